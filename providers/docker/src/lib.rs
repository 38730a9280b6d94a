//! The docker provider for stackctl (in progress).
