//! How this crate's errors become the provider contract's [`ProviderError`]: an
//! unreachable host stays `Unreachable` (the engine treats it apart), everything else is
//! a failure with the error's own message.

use stackctl_host::HostError;
use stackctl_provider::ProviderError;

use crate::api::ClientError;

pub(crate) fn failed(message: impl Into<String>, detail: Option<String>) -> ProviderError {
    ProviderError::Failed {
        message: message.into(),
        detail,
        hint: None,
    }
}

pub(crate) fn from_client(error: ClientError) -> ProviderError {
    match error {
        ClientError::Host(HostError::Unreachable { target, cause }) => {
            ProviderError::Unreachable { target, cause }
        }
        other => failed(other.to_string(), None),
    }
}

pub(crate) fn from_host(error: HostError) -> ProviderError {
    match error.lock_refusal() {
        Some(refusal) => ProviderError::Failed {
            message: refusal.message,
            detail: refusal.detail,
            hint: Some(refusal.hint.into()),
        },
        None => from_client(ClientError::Host(error)),
    }
}
