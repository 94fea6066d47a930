//! The bridge network driver plugin: bridge, veth, IPAM, NAT and published ports

mod plugin;
