//! Isolation runtimes: the native namespaces+cgroups backend and the OCI runtime binary backend
