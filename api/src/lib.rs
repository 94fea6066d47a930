//! The Docker Engine API wire types and the HTTP client shared by the berth CLI, daemon and tests
