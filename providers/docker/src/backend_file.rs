//! The edge's backend file of a routed service when a route comes, moves or goes.
//!
//! Which route sends traffic to a service changes only where the edge finds the service,
//! never the container: `route_backend` is updated in place (`service.rs`), and this file
//! brings the backend file on the host in line with it. A route that appears writes the
//! file naming the container that serves now, with the swap's own writer (`swap.rs`), so
//! both write the same bytes; a route that goes removes the file; a file that moved is
//! written at its new path before the old one is removed. No traffic moves from one
//! container to another, so nothing waits for the edge: it loads the file on its own.
//!
//! The same rule cleans up after a replace or a delete: a recorded backend file that the
//! desired service no longer names is removed once its container is gone.

use stackctl_provider::{Address, Attributes, ProviderError};

use crate::api::DockerClient;
use crate::provider::DockerProvider;
use crate::provider_error::{failed, from_host};
use crate::spec::{RouteBackend, ServiceSpec};

/// The recorded backend file that no route needs any more: the service lost its route,
/// or its backend file moved to another path. `None` when the file is still wanted.
pub(crate) fn stale_backend_file<'a>(
    recorded: Option<&'a RouteBackend>,
    desired: Option<&RouteBackend>,
) -> Option<&'a str> {
    let recorded = recorded?;
    match desired {
        Some(desired) if desired.file == recorded.file => None,
        _ => Some(recorded.file.as_str()),
    }
}

/// The backend a service was last applied with, from its recorded attributes (`None`
/// when nothing is recorded or it had no route).
pub(crate) fn recorded_backend(
    address: &Address,
    recorded: Option<&Attributes>,
) -> Result<Option<RouteBackend>, ProviderError> {
    let Some(attributes) = recorded else {
        return Ok(None);
    };
    RouteBackend::from_attributes(address.name(), attributes).map_err(|error| {
        failed(
            format!("`{address}`: the recorded `route_backend` is unreadable: {error}"),
            None,
        )
    })
}

impl DockerProvider {
    /// For a service updated in place: writes the desired backend file naming `container`
    /// (the one that keeps serving) when the route's backend changed, and removes the
    /// recorded file no route needs any more.
    pub(crate) async fn update_backend_file(
        &self,
        client: &DockerClient,
        recorded: Option<&RouteBackend>,
        spec: &ServiceSpec,
        container: &str,
    ) -> Result<(), ProviderError> {
        if recorded != spec.route_backend.as_ref() {
            // No other container served before: nothing to wait for.
            self.switch_backend(client, spec, container, false).await?;
        }
        self.remove_stale_backend_file(client, recorded, spec.route_backend.as_ref())
            .await
    }

    /// Removes the recorded backend file when the desired service (`None`: deleted)
    /// no longer names it. A file already gone is not an error.
    pub(crate) async fn remove_stale_backend_file(
        &self,
        client: &DockerClient,
        recorded: Option<&RouteBackend>,
        desired: Option<&RouteBackend>,
    ) -> Result<(), ProviderError> {
        match stale_backend_file(recorded, desired) {
            Some(file) => client.host().remove_file(file).await.map_err(from_host),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(file: &str) -> RouteBackend {
        RouteBackend {
            file: file.to_string(),
            temp_dir: "/srv/shop/traefik/.tmp".to_string(),
            service: "api".to_string(),
        }
    }

    #[test]
    fn a_backend_file_is_stale_when_its_route_went_or_it_moved() {
        let old = backend("/srv/shop/traefik/dynamic/backend-api.yml");
        let moved = backend("/srv/other/traefik/dynamic/backend-api.yml");
        assert_eq!(
            stale_backend_file(Some(&old), None),
            Some(old.file.as_str())
        );
        assert_eq!(
            stale_backend_file(Some(&old), Some(&moved)),
            Some(old.file.as_str())
        );
        assert_eq!(stale_backend_file(Some(&old), Some(&old)), None);
        assert_eq!(stale_backend_file(None, Some(&old)), None);
        assert_eq!(stale_backend_file(None, None), None);
    }

    #[test]
    fn the_recorded_backend_ignores_the_admin_url_of_earlier_versions() {
        let address = Address::new("service", "api");
        let mut attributes = Attributes::new();
        attributes.insert(
            "route_backend".into(),
            stackctl_provider::Value::Map(std::collections::BTreeMap::from([
                (
                    "file".to_string(),
                    stackctl_provider::Value::text("/srv/shop/traefik/dynamic/backend-api.yml"),
                ),
                (
                    "temp_dir".to_string(),
                    stackctl_provider::Value::text("/srv/shop/traefik/.tmp"),
                ),
                ("service".to_string(), stackctl_provider::Value::text("api")),
                (
                    "admin_url".to_string(),
                    stackctl_provider::Value::text("http://127.0.0.1:8081"),
                ),
            ])),
        );
        assert_eq!(
            recorded_backend(&address, Some(&attributes)).unwrap(),
            Some(backend("/srv/shop/traefik/dynamic/backend-api.yml"))
        );
        assert_eq!(recorded_backend(&address, None).unwrap(), None);
        let error = recorded_backend(
            &address,
            Some(&Attributes::from([(
                "route_backend".to_string(),
                stackctl_provider::Value::Map(Default::default()),
            )])),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "`service.api`: the recorded `route_backend` is unreadable: `route_backend` has no `file`"
        );
    }
}
