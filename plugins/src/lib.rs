//! The stable plugin ABI (abi_stable) and the loader that turns plugin libraries into core trait objects
