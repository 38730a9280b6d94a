//! Where the client talks to and as whom: base URL and token, from arguments or from
//! `DIGITALOCEAN_TOKEN` (or `DIGITALOCEAN_ACCESS_TOKEN`) and `DIGITALOCEAN_API_URL`.

use super::{
    RetryPolicy, Token, ALTERNATE_TOKEN_VARIABLE, BASE_URL_VARIABLE, DEFAULT_BASE_URL, PAGE_SIZE,
    TOKEN_VARIABLE,
};

/// Where the client talks to and as whom.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub base_url: String,
    /// `None` when no token was configured: every call then fails with
    /// [`ClientError::MissingToken`] before touching the network.
    pub token: Option<Token>,
    pub retry: RetryPolicy,
    /// Items per list page (DigitalOcean allows 1 to 200).
    pub page_size: u32,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, token: Option<Token>) -> Self {
        ClientConfig {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            token,
            retry: RetryPolicy::default(),
            page_size: PAGE_SIZE,
        }
    }

    /// Reads `DIGITALOCEAN_TOKEN` (or `DIGITALOCEAN_ACCESS_TOKEN`) and
    /// `DIGITALOCEAN_API_URL`. A missing token is not an error here: it is reported, with
    /// the variable to set, by the first call that needs it.
    pub fn from_env() -> Self {
        let token = [TOKEN_VARIABLE, ALTERNATE_TOKEN_VARIABLE]
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .map(|value| value.trim().to_string())
            .find(|value| !value.is_empty())
            .map(Token::new);
        let base_url = std::env::var(BASE_URL_VARIABLE)
            .ok()
            .filter(|value| !value.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        ClientConfig::new(base_url, token)
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}
