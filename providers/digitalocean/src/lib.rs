//! The digitalocean provider for stackctl (in progress).
