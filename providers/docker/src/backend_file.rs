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
//!
//! The file is part of the service as a resource: its content is recorded as the computed
//! attribute `backend_file` (what it must say: the container that serves now) and read
//! back with the stack's files on every refresh (`refresh.rs`; `null` when it is gone).
//! A file edited or removed by hand is therefore drift, repaired by an update in place
//! that writes it again; adopting a routed service writes it when the live copy differs,
//! so a lost state converges in one apply.

use stackctl_provider::{Address, Attributes, ProviderError};

use crate::api::DockerClient;
use crate::provider::DockerProvider;
use crate::provider_error::{failed, from_host};
use crate::spec::{RouteBackend, ServiceSpec};

/// The computed attribute holding the backend file's content (`null`: no file).
pub(crate) const BACKEND_FILE: &str = "backend_file";

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
    /// (the one that keeps serving) — again when only its content drifted, since an
    /// update is also how a hand-edited or removed file is repaired — and removes the
    /// recorded file no route needs any more.
    pub(crate) async fn update_backend_file(
        &self,
        client: &DockerClient,
        recorded: Option<&RouteBackend>,
        spec: &ServiceSpec,
        container: &str,
    ) -> Result<(), ProviderError> {
        // No other container served before: nothing to wait for.
        self.switch_backend(client, spec, container, false).await?;
        self.remove_stale_backend_file(client, recorded, spec.route_backend.as_ref())
            .await
    }

    /// What the backend file of `spec` must say while `container` serves it; `None` when
    /// the service has no route or the edge's formats are unknown (then nothing routes).
    pub(crate) fn expected_backend_file(
        &self,
        spec: &ServiceSpec,
        container: &str,
    ) -> Option<String> {
        let backend = spec.route_backend.as_ref()?;
        let formats = self.options.edge_formats.as_ref()?;
        Some(formats.backend_file(&backend.service, &spec.backend_url(container)))
    }

    /// For an adopted routed service: writes its backend file when the host's copy is
    /// missing or differs (after a crash or a lost state, the container may be there
    /// while the edge knows nothing of it). Nothing moves: it names the container found.
    pub(crate) async fn adopt_backend_file(
        &self,
        client: &DockerClient,
        spec: &ServiceSpec,
        container: &str,
    ) -> Result<(), ProviderError> {
        let (Some(backend), Some(expected)) = (
            spec.route_backend.as_ref(),
            self.expected_backend_file(spec, container),
        ) else {
            return Ok(());
        };
        let found = client
            .host()
            .read_files(std::slice::from_ref(&backend.file))
            .await
            .map_err(from_host)?;
        if found.first().and_then(Option::as_deref) == Some(expected.as_bytes()) {
            return Ok(());
        }
        self.switch_backend(client, spec, container, false).await
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
            network: None,
            health_path: None,
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
