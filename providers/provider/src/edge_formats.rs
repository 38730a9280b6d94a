//! [`EdgeFormats`]: the edge's file and API formats, for a provider that steers the edge
//! without owning it.
//!
//! The docker provider's zero-downtime swap rewrites the backend file of a routed service
//! and asks the edge's API whether the new server is listed. Both formats are Traefik's,
//! and the traefik crate owns them: its renderer is what the real-Traefik tests load, so
//! the file a swap ships is the file those tests validate. The docker and traefik crates
//! do not depend on each other; the front end hands the traefik crate's implementation to
//! the docker provider through this trait. Everything here is pure: no I/O, no async.

/// The edge's formats, as a provider that steers the edge sees them.
pub trait EdgeFormats: Send + Sync + std::fmt::Debug {
    /// The dynamic file that sends `service`'s traffic to `url` (`http://container:port`).
    fn backend_file(&self, service: &str, url: &str) -> String;
    /// The dynamic file that balances `service`'s traffic over `urls` (a swarm service's
    /// tasks); with `health_path`, the edge checks each of them on that HTTP path.
    fn backend_file_servers(
        &self,
        service: &str,
        urls: &[String],
        health_path: Option<&str>,
    ) -> String;

    /// The API path that lists the servers of `service`, percent-encoded as needed.
    fn servers_path(&self, service: &str) -> String;

    /// The server URLs in the API's answer (its JSON body) to [`Self::servers_path`].
    fn servers_in(&self, answer: &[u8]) -> Result<Vec<String>, EdgeFormatError>;

    /// The port the edge's API listens on inside its container.
    fn api_port(&self) -> u16;
}

/// An answer of the edge's API that does not say which servers a service has.
#[derive(Debug, thiserror::Error)]
pub enum EdgeFormatError {
    #[error("the edge's answer is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
}
