//! [`TraefikFormats`]: Traefik's formats for a provider that steers the edge without
//! depending on this crate (the docker provider's zero-downtime swap).
//!
//! The swap writes the backend file and reads Traefik's answer about a service's servers.
//! Both formats live here, in [`render_backend`] and in [`crate::admin`], so the file the
//! swap ships is byte for byte the one the real-Traefik tests load, and the answer is read
//! by the same parser this crate's own readiness checks use. The front end hands a
//! `TraefikFormats` to the docker provider as a `stackctl_provider::EdgeFormats`.

use stackctl_provider::{EdgeFormatError, EdgeFormats};

use crate::admin::{parse_service_servers, service_servers_path, API_PORT};
use crate::render::{render_backend, render_backend_servers};

/// Traefik's backend file, its API path for a service's servers and the parser of the
/// answer, behind the provider contract's [`EdgeFormats`].
#[derive(Clone, Copy, Debug, Default)]
pub struct TraefikFormats;

impl EdgeFormats for TraefikFormats {
    fn backend_file(&self, service: &str, url: &str) -> String {
        render_backend(service, url)
    }

    fn backend_file_servers(
        &self,
        service: &str,
        urls: &[String],
        health_path: Option<&str>,
    ) -> String {
        render_backend_servers(service, urls, health_path)
    }

    fn servers_path(&self, service: &str) -> String {
        service_servers_path(service)
    }

    fn servers_in(&self, answer: &[u8]) -> Result<Vec<String>, EdgeFormatError> {
        let json: serde_json::Value = serde_json::from_slice(answer)?;
        Ok(parse_service_servers(&json))
    }

    fn api_port(&self) -> u16 {
        API_PORT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_formats_are_the_renderer_and_the_parser_of_this_crate() {
        let formats = TraefikFormats;
        assert_eq!(
            formats.backend_file("api", "http://shop-api-1:8000"),
            render_backend("api", "http://shop-api-1:8000")
        );
        assert_eq!(
            formats.backend_file_servers("api", &["http://shop-api-1:8000".to_string()], None),
            render_backend("api", "http://shop-api-1:8000")
        );
        assert_eq!(formats.servers_path("api"), "/api/http/services/api@file");
        let answer = br#"{"loadBalancer": {"servers": [{"url": "http://shop-api-1:8000"}]}, "status": "enabled"}"#;
        assert_eq!(
            formats.servers_in(answer).unwrap(),
            vec!["http://shop-api-1:8000".to_string()]
        );
        assert!(formats.servers_in(b"404 page not found\n").is_err());
        assert_eq!(formats.api_port(), 8080);
    }
}
