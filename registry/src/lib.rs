//! The OCI distribution client (pull, push, login) behind the core Registry trait
