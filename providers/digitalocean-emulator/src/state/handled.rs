//! What a request handler produces before the common headers are added, and the
//! standard answers: success bodies, 204s, and DigitalOcean's `{id, message, request_id}`
//! error body.

use serde_json::{json, Value as Json};

/// What a handler produced, before the common headers are added.
pub(crate) struct Handled {
    pub(super) status: u16,
    pub(super) body: Option<Json>,
    /// A 204 whose contract declares a `content-type` header.
    pub(super) content_type_on_empty: bool,
}

pub(super) fn ok(status: u16, body: Json) -> Handled {
    Handled {
        status,
        body: Some(body),
        content_type_on_empty: false,
    }
}

pub(super) fn no_content() -> Handled {
    Handled {
        status: 204,
        body: None,
        content_type_on_empty: false,
    }
}

pub(super) fn error(status: u16, id: &str, message: impl Into<String>) -> Handled {
    Handled {
        status,
        body: Some(json!({ "id": id, "message": message.into(), "request_id": request_id() })),
        content_type_on_empty: false,
    }
}

pub(super) fn not_found() -> Handled {
    error(
        404,
        "not_found",
        "The resource you were accessing could not be found.",
    )
}

pub(super) fn unprocessable(message: impl Into<String>) -> Handled {
    error(422, "unprocessable_entity", message)
}

pub(super) fn request_id() -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        fastrand::u32(..),
        fastrand::u16(..),
        fastrand::u16(..0x1000),
        fastrand::u16(..0x1000),
        fastrand::u64(..0x1_0000_0000_0000)
    )
}
