//! Table tests for lowering.
