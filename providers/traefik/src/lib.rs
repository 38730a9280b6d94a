//! The traefik provider for stackctl (in progress).
