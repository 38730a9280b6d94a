//! The `traefik` provider: Traefik's static file, its TLS options, and one dynamic file
//! per route and per middleware, written on the target host.
//!
//! `prepare` renders every file into the resource's `content` attribute with no I/O, so
//! a plan shows (and hashes) the exact bytes apply will write. `read` fetches every file
//! of the stack in one [`Host::read_files`] round trip and reports what is on disk as the
//! live `content`, so a hand edit shows up as drift with a diff. `apply` writes through
//! [`Host::write_file`], which stages the bytes in `temp_dir` (outside the watched
//! directory) and renames them in: Traefik then sees one complete file, never a half
//! written one, and reloads within milliseconds.
//!
//! Traefik loads every file of its dynamic directory, not only stackctl's: a file dropped
//! there by hand could add a router to any host. `read` lists the directory and reports
//! the files no resource of the stack wrote (the route and middleware files, the TLS
//! options, the docker provider's `backend-<service>.yml` of each routed service) as the
//! static file's computed attribute `unmanaged_files`, recorded empty by every apply: any
//! such file is drift of `file.traefik-static`, and the update that repairs it removes
//! the files the plan listed.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use stackctl_host::{Host, HostConnector, HostError, Target};
use stackctl_provider::{
    canonical_json, sha256_hex, Action, ActionKind, Address, ApplyContext, ApplyOutcome,
    AttributeSchema, Attributes, KindSchema, LiveResource, Provider, ProviderError, ReadRequest,
    RecordedResource, Resource, Secret, Value,
};

use crate::default_certificate::{
    DefaultCertificateFiles, DEFAULT_CERTIFICATE, DEFAULT_CERTIFICATE_FILES, PRESENT,
};
use crate::render::{
    header, render_middleware_with, render_route, render_static, render_tls_options,
    rendered_bcrypt_hashes, Hashes, MANAGED_MARKER,
};
use crate::spec::{MiddlewareSpec, RouteSpec, SpecError, StaticSpec, TlsOptionsSpec};

/// The provider name resources carry.
pub const PROVIDER_NAME: &str = "traefik";
/// The one `file.*` resource this provider owns.
pub const STATIC_FILE_NAME: &str = "traefik-static";
/// The TLS options file, in the host's dynamic directory.
pub const TLS_OPTIONS_FILE: &str = "tls-options.yml";
/// The static file's computed attribute: files in the dynamic directory that no resource
/// of the stack wrote (empty after every apply).
pub const UNMANAGED_FILES: &str = "unmanaged_files";

/// Owns `file.traefik-static`, `middleware.*` and `route.*`.
pub struct TraefikProvider {
    connector: Arc<HostConnector>,
    stack: String,
}

/// One file a resource consists of: the attribute holding its content, and its path.
struct ManagedFile {
    content_attribute: &'static str,
    path: String,
}

impl TraefikProvider {
    /// `connector` is the run's shared host connection; `stack` is `[stack].name`, named
    /// in each file's header so a file can be told apart from another stack's.
    pub fn new(connector: Arc<HostConnector>, stack: impl Into<String>) -> Self {
        TraefikProvider {
            connector,
            stack: stack.into(),
        }
    }

    fn droplet_address(&self, context: &ApplyContext) -> Option<String> {
        context.droplet_address(self.droplet_name()?)
    }

    fn subject(&self, address: &Address) -> String {
        format!("stack {}, {address}", self.stack)
    }

    fn owns(&self, address: &Address) -> bool {
        match address.kind() {
            "middleware" | "route" => true,
            "file" => address.name() == STATIC_FILE_NAME,
            _ => false,
        }
    }

    /// The rendered attributes of one resource (what `prepare` adds).
    fn rendered(&self, resource: &Resource) -> Result<Attributes, ProviderError> {
        self.rendered_with(resource, &Hashes::Computed)
    }

    /// [`TraefikProvider::rendered`], with a basic-auth file's hashes from `hashes`.
    fn rendered_with(
        &self,
        resource: &Resource,
        hashes: &Hashes,
    ) -> Result<Attributes, ProviderError> {
        let address = &resource.address;
        let attributes = &resource.attributes;
        let subject = self.subject(address);
        let mut rendered = Attributes::new();
        match address.kind() {
            "file" if address.name() == STATIC_FILE_NAME => {
                let spec = StaticSpec::from_attributes(attributes).map_err(spec_failure)?;
                let tls = TlsOptionsSpec::from_attributes(attributes).map_err(spec_failure)?;
                let tls_path = tls_options_path(attributes).map_err(spec_failure)?;
                rendered.insert("content".into(), Value::Text(render_static(&spec, &subject)));
                rendered.insert(
                    "tls_content".into(),
                    Value::Text(render_tls_options(&tls, &format!("{subject}, TLS options"))),
                );
                rendered.insert("tls_path".into(), Value::Text(tls_path));
            }
            "middleware" => {
                let spec =
                    MiddlewareSpec::from_attributes(address.name(), attributes).map_err(spec_failure)?;
                let file = render_middleware_with(&spec, &subject, hashes).map_err(spec_failure)?;
                let content = if file.sensitive {
                    Value::Secret(Secret::new(&file.text, &content_salt(attributes)))
                } else {
                    Value::Text(file.text)
                };
                rendered.insert("content".into(), content);
            }
            "route" => {
                let spec = RouteSpec::from_attributes(address.name(), attributes).map_err(spec_failure)?;
                rendered.insert("content".into(), Value::Text(render_route(&spec, &subject)));
            }
            _ => {
                return Err(ProviderError::failed(format!(
                    "the traefik provider does not manage `{address}`; it owns file.{STATIC_FILE_NAME}, middleware.* and route.*"
                )))
            }
        }
        Ok(rendered)
    }

    /// Connects to the target, finding a droplet's address among recorded attributes.
    async fn host(&self, droplet_address: Option<String>) -> Result<Arc<dyn Host>, ProviderError> {
        self.connector
            .connect(droplet_address.as_deref())
            .await
            .map_err(host_failure)
    }

    /// The run's shared host connection.
    pub(crate) fn connector(&self) -> &HostConnector {
        &self.connector
    }

    fn droplet_name(&self) -> Option<&str> {
        match self.connector.target() {
            Target::Droplet { droplet, .. } => Some(droplet),
            _ => None,
        }
    }
}

/// Where the TLS options file goes: `tls_path` when lowering sets it, otherwise
/// `dynamic/tls-options.yml` beside the static file (docs/resources.md puts the dynamic
/// directory at `<root>/traefik/dynamic` and the static file at `<root>/traefik/traefik.yml`).
fn tls_options_path(attributes: &Attributes) -> Result<String, SpecError> {
    if let Some(Value::Text(path)) = attributes.get("tls_path") {
        return Ok(path.clone());
    }
    let path = required_path(attributes, "file.traefik-static")?;
    let directory = Path::new(&path).parent().unwrap_or_else(|| Path::new("/"));
    Ok(directory
        .join("dynamic")
        .join(TLS_OPTIONS_FILE)
        .to_string_lossy()
        .into_owned())
}

/// The directory Traefik watches: the one holding the TLS options file.
fn dynamic_directory(attributes: &Attributes) -> Result<String, SpecError> {
    let tls_path = tls_options_path(attributes)?;
    Ok(Path::new(&tls_path)
        .parent()
        .unwrap_or_else(|| Path::new("/"))
        .to_string_lossy()
        .into_owned())
}

/// The names of the files the stack writes in `directory`: the route and middleware
/// files, the TLS options, and the backend file of each routed service (written by the
/// docker provider as `backend-<service>.yml`, docs/resources.md).
fn stack_files(
    bases: &BTreeMap<Address, Attributes>,
    directory: &str,
) -> std::collections::BTreeSet<String> {
    let in_directory = |path: &str| {
        let path = Path::new(path);
        (path.parent() == Some(Path::new(directory)))
            .then(|| path.file_name())
            .flatten()
            .map(|name| name.to_string_lossy().into_owned())
    };
    let mut names = std::collections::BTreeSet::new();
    for (address, attributes) in bases {
        for file in managed_files(address, attributes).unwrap_or_default() {
            names.extend(in_directory(&file.path));
        }
        if address.kind() == "route" {
            if let Some(service) = attributes.get("service").and_then(Value::as_text) {
                names.insert(format!("backend-{service}.yml"));
            }
        }
    }
    names
}

/// The unmanaged files the plan showed for this action (the live side of the change).
/// Names with a `/` are not in the directory and are never removed.
fn planned_unmanaged_files(action: &Action) -> Vec<String> {
    action
        .changes
        .iter()
        .filter(|change| change.attribute == UNMANAGED_FILES)
        .filter_map(|change| change.before.as_ref()?.as_list().map(<[Value]>::to_vec))
        .flatten()
        .filter_map(|name| name.as_text().map(str::to_string))
        .filter(|name| !name.contains('/') && name != "." && name != "..")
        .collect()
}

fn required_path(attributes: &Attributes, subject: &str) -> Result<String, SpecError> {
    match attributes.get("path") {
        Some(Value::Text(path)) if path.starts_with('/') => Ok(path.clone()),
        Some(Value::Text(path)) => Err(SpecError {
            setting: format!("{subject} `path`"),
            message: format!("expected an absolute path on the host, found `{path}`"),
        }),
        _ => Err(SpecError {
            setting: format!("{subject} `path`"),
            message: "is required".to_string(),
        }),
    }
}

/// The files one resource consists of, from its (desired or recorded) attributes.
fn managed_files(
    address: &Address,
    attributes: &Attributes,
) -> Result<Vec<ManagedFile>, SpecError> {
    let mut files = vec![ManagedFile {
        content_attribute: "content",
        path: required_path(attributes, &address.to_string())?,
    }];
    if address.kind() == "file" {
        files.push(ManagedFile {
            content_attribute: "tls_content",
            path: tls_options_path(attributes)?,
        });
    }
    Ok(files)
}

/// Where files are staged before the rename: `temp_dir`, or `.tmp` beside the directory
/// holding the dynamic directory (never inside a watched directory).
fn temp_dir(attributes: &Attributes, path: &str) -> String {
    if let Some(Value::Text(directory)) = attributes.get("temp_dir") {
        return directory.clone();
    }
    let parent = Path::new(path).parent().unwrap_or_else(|| Path::new("/"));
    let grandparent = parent.parent().unwrap_or(parent);
    grandparent.join(".tmp").to_string_lossy().into_owned()
}

/// The salt of a sensitive file's content digest. It comes from the middleware's
/// settings, where passwords appear only as salted digests: equal settings give equal
/// digests (stable plans), and the digest cannot be recomputed without the state's salt.
fn content_salt(attributes: &Attributes) -> String {
    let inputs: Attributes = ["type", "settings"]
        .iter()
        .filter_map(|key| {
            attributes
                .get(*key)
                .map(|value| (key.to_string(), value.clone()))
        })
        .collect();
    format!(
        "stackctl-traefik content {}",
        sha256_hex(canonical_json(&inputs).as_bytes())
    )
}

/// True for a basic-auth middleware (its file holds bcrypt hashes).
fn is_basic_auth(resource: &Resource) -> bool {
    resource.address.kind() == "middleware"
        && resource.attributes.get("type").and_then(Value::as_text) == Some("basic_auth")
}

/// True when a content attribute holds credential hashes: it was rendered as a secret,
/// or (not rendered yet) the middleware is a basic-auth one.
fn is_sensitive(attributes: &Attributes, content_attribute: &str) -> bool {
    matches!(attributes.get(content_attribute), Some(Value::Secret(_)))
        || (content_attribute == "content"
            && attributes.get("type").and_then(Value::as_text) == Some("basic_auth"))
}

fn spec_failure(error: SpecError) -> ProviderError {
    ProviderError::Failed {
        message: error.to_string(),
        detail: None,
        hint: None,
    }
}

fn host_failure(error: HostError) -> ProviderError {
    if let Some(refusal) = error.lock_refusal() {
        return ProviderError::Failed {
            message: refusal.message,
            detail: refusal.detail,
            hint: Some(refusal.hint.into()),
        };
    }
    match error {
        HostError::Unreachable { target, cause } => ProviderError::Unreachable { target, cause },
        HostError::Refused { message, hint } => ProviderError::Credentials {
            message,
            hint: hint.unwrap_or_default(),
        },
        other => ProviderError::failed(other.to_string()),
    }
}

/// The bytes to write for one content attribute; a sensitive file needs its plaintext.
fn content_bytes(
    address: &Address,
    attribute: &str,
    value: Option<&Value>,
) -> Result<Vec<u8>, ProviderError> {
    match value {
        Some(Value::Text(text)) => Ok(text.as_bytes().to_vec()),
        Some(Value::Secret(secret)) => secret.expose().map(|text| text.as_bytes().to_vec()).ok_or_else(|| {
            ProviderError::failed(format!(
                "`{address}` {attribute}: the rendered file is known only by its digest; plan again so it can be rendered"
            ))
        }),
        _ => Err(ProviderError::failed(format!(
            "`{address}` has no rendered `{attribute}`"
        ))),
    }
}

#[async_trait]
impl Provider for TraefikProvider {
    fn name(&self) -> &'static str {
        PROVIDER_NAME
    }

    async fn verify(
        &self,
        request: &stackctl_provider::VerifyRequest,
    ) -> Option<Result<stackctl_provider::Verification, stackctl_provider::VerifyError>> {
        Some(self.verify_edge(request).await)
    }

    fn kinds(&self) -> Vec<KindSchema> {
        let files = |extra: &[AttributeSchema]| {
            let mut attributes = vec![
                AttributeSchema::plain("path"),
                AttributeSchema::plain("temp_dir"),
                AttributeSchema::plain("content"),
            ];
            attributes.extend_from_slice(extra);
            attributes
        };
        vec![
            KindSchema {
                kind: "file",
                provider: PROVIDER_NAME,
                attributes: files(&[
                    AttributeSchema::plain("tls_path"),
                    AttributeSchema::plain("tls_content"),
                    AttributeSchema::plain(DEFAULT_CERTIFICATE),
                    AttributeSchema::computed(UNMANAGED_FILES),
                    AttributeSchema::computed(DEFAULT_CERTIFICATE_FILES),
                ]),
            },
            KindSchema {
                kind: "middleware",
                provider: PROVIDER_NAME,
                attributes: files(&[]),
            },
            KindSchema {
                kind: "route",
                provider: PROVIDER_NAME,
                attributes: files(&[]),
            },
        ]
    }

    fn prepare(&self, desired: &mut Resource) -> Result<(), ProviderError> {
        let rendered = self.rendered(desired)?;
        desired.attributes.extend(rendered);
        Ok(())
    }

    /// A basic-auth middleware waits: its file holds a bcrypt hash per user (tens of
    /// milliseconds each, on every command), which the file on the host can spare.
    fn prepare_waits_for_refresh(&self, desired: &Resource) -> Result<bool, ProviderError> {
        if !is_basic_auth(desired) {
            return Ok(false);
        }
        // Every setting is checked now, as `prepare` would.
        self.rendered_with(desired, &Hashes::Placeholder)?;
        Ok(true)
    }

    /// The hashes of the file on the host are taken when the file rendered with them is
    /// byte for byte the one state recorded: state recorded the digest of what stackctl
    /// wrote for its settings (the passwords' salted digests among them, so the same
    /// passwords), and each hash in that file is the one bcrypt gives for its password and
    /// the salt derived from it. A file edited by hand, another password, another
    /// rendering, or no file: the hashes are computed, as `prepare` does.
    fn prepare_with_live(
        &self,
        desired: &mut Resource,
        live: Option<&LiveResource>,
        recorded: Option<&RecordedResource>,
    ) -> Result<(), ProviderError> {
        let on_host = live
            .and_then(|live| live.attributes.get("content"))
            .and_then(|content| match content {
                Value::Secret(secret) => secret.expose(),
                _ => None,
            })
            .map(rendered_bcrypt_hashes)
            .unwrap_or_default();
        let recorded_content = recorded.and_then(|recorded| recorded.attributes.get("content"));
        if is_basic_auth(desired) && !on_host.is_empty() && recorded_content.is_some() {
            let rendered = self.rendered_with(desired, &Hashes::Known(&on_host))?;
            if rendered.get("content") == recorded_content {
                tracing::debug!(address = %desired.address, "basic-auth hashes taken from the file on the host (it is the recorded one)");
                desired.attributes.extend(rendered);
                return Ok(());
            }
        }
        self.prepare(desired)
    }

    /// Files on the host change only under the host lock, shared with the docker provider
    /// through the connector (taken once per run).
    async fn begin_apply(&self, context: &ApplyContext) -> Result<(), ProviderError> {
        let host = self.host(self.droplet_address(context)).await?;
        self.connector
            .take_lock(
                host.as_ref(),
                &context.stack,
                &context.lineage,
                context.state_was_empty,
            )
            .await
            .map_err(host_failure)
    }

    async fn end_apply(&self, context: &ApplyContext) -> Result<(), ProviderError> {
        let host = self.host(self.droplet_address(context)).await?;
        self.connector
            .release_lock(host.as_ref())
            .await
            .map_err(host_failure)
    }

    /// The files as recorded after the apply, for the run folder. A basic-auth file is
    /// recorded as a secret (only its digest is known) and is listed as such.
    async fn evidence(&self, context: &ApplyContext) -> Vec<(String, Vec<u8>)> {
        let Ok(recorded) = context.recorded.read() else {
            return Vec::new();
        };
        let mut files = Vec::new();
        for (address, attributes) in recorded.iter().filter(|(address, _)| self.owns(address)) {
            for (content, path) in [("content", "path"), ("tls_content", "tls_path")] {
                let Some(path) = attributes.get(path).and_then(|value| value.as_text()) else {
                    continue;
                };
                let name = Path::new(path)
                    .file_name()
                    .map(|name| name.to_string_lossy().to_string())
                    .unwrap_or_else(|| address.to_string());
                let body = match attributes.get(content) {
                    Some(stackctl_provider::Value::Text(text)) => text.clone().into_bytes(),
                    Some(stackctl_provider::Value::Secret(_)) => {
                        format!("# {address}: {path} holds secrets (bcrypt hashes); not copied\n")
                            .into_bytes()
                    }
                    _ => continue,
                };
                files.push((format!("files/{name}"), body));
            }
        }
        files
    }

    async fn read(&self, request: &ReadRequest) -> Result<Vec<LiveResource>, ProviderError> {
        // Recorded attributes describe what is on disk (the path it was written to, the
        // salt of a sensitive digest); desired ones stand in for resources never applied.
        let mut bases: BTreeMap<Address, Attributes> = BTreeMap::new();
        for desired in &request.desired {
            if self.owns(&desired.address) {
                bases.insert(desired.address.clone(), desired.attributes.clone());
            }
        }
        for recorded in &request.recorded {
            if self.owns(&recorded.address) && recorded.provider == PROVIDER_NAME {
                bases.insert(recorded.address.clone(), recorded.attributes.clone());
            }
        }
        if bases.is_empty() {
            return Ok(Vec::new());
        }

        let mut layout = Vec::with_capacity(bases.len());
        let mut paths = Vec::new();
        for (address, attributes) in &bases {
            let files = managed_files(address, attributes).map_err(spec_failure)?;
            paths.extend(files.iter().map(|file| file.path.clone()));
            layout.push((address, attributes, files));
        }

        let droplet_address = self
            .droplet_name()
            .and_then(|droplet| request.droplet_address(droplet));
        let host = self.host(droplet_address).await?;
        // One round trip for every file of the stack and the listings of the dynamic
        // directory and of the default certificate's directory (over SSH one command).
        let static_file = Address::new("file", STATIC_FILE_NAME);
        let (dynamic_directory, certificate) = match bases.get(&static_file) {
            Some(attributes) => (
                Some(dynamic_directory(attributes).map_err(spec_failure)?),
                DefaultCertificateFiles::from_attributes(attributes).map_err(spec_failure)?,
            ),
            None => (None, None),
        };
        let certificate_directory = certificate.as_ref().map(DefaultCertificateFiles::directory);
        let directories: Vec<String> = dynamic_directory
            .iter()
            .chain(certificate_directory.iter())
            .cloned()
            .collect();
        let (contents, mut listings) = self
            .connector
            .read_and_list(host.as_ref(), &paths, &directories)
            .await
            .map_err(host_failure)?;
        let certificate_listing = certificate_directory.as_ref().and_then(|_| listings.pop());
        let dynamic_listing = dynamic_directory.as_ref().and_then(|_| listings.pop());
        let mut contents = contents.into_iter();

        let mut live = Vec::new();
        for (address, attributes, files) in layout {
            let mut attributes = attributes.clone();
            let mut present = false;
            let mut owned = false;
            for (position, file) in files.iter().enumerate() {
                let content = contents.next().flatten();
                match content {
                    None => {
                        attributes.remove(file.content_attribute);
                    }
                    Some(bytes) => {
                        let text = String::from_utf8_lossy(&bytes).into_owned();
                        if position == 0 {
                            present = true;
                            owned = text.starts_with(MANAGED_MARKER)
                                && text.contains(&format!("(stack {}, ", self.stack));
                        }
                        // A sensitive file is compared by digest, with the same salt
                        // prepare used, so an unchanged file matches what was recorded.
                        let value = if is_sensitive(&attributes, file.content_attribute) {
                            Value::Secret(Secret::new(&text, &content_salt(&attributes)))
                        } else {
                            Value::Text(text)
                        };
                        attributes.insert(file.content_attribute.to_string(), value);
                    }
                }
            }
            if present {
                live.push(LiveResource {
                    address: address.clone(),
                    id: Some(files[0].path.clone()),
                    attributes,
                    owned,
                });
            }
        }
        if let (Some(found), Some(directory)) = (
            live.iter_mut().find(|found| found.address == static_file),
            dynamic_directory,
        ) {
            let listed = dynamic_listing.unwrap_or_default();
            let known = stack_files(&bases, &directory);
            let unmanaged: Vec<Value> = listed
                .into_iter()
                .filter(|name| !known.contains(name))
                .map(Value::Text)
                .collect();
            found
                .attributes
                .insert(UNMANAGED_FILES.into(), Value::List(unmanaged));
            // The default certificate's files are only listed: the key is never read back.
            if let Some(files) = certificate {
                let listed = certificate_listing.unwrap_or_default();
                let state = if files.both_listed(&listed) {
                    PRESENT
                } else {
                    "missing"
                };
                found
                    .attributes
                    .insert(DEFAULT_CERTIFICATE_FILES.into(), Value::text(state));
            }
        }
        Ok(live)
    }

    async fn apply(
        &self,
        action: &Action,
        context: &ApplyContext,
    ) -> Result<ApplyOutcome, ProviderError> {
        match self.apply_action(action, context).await {
            Err(error @ (ProviderError::Failed { .. } | ProviderError::Credentials { .. })) => {
                match self.host(self.droplet_address(context)).await {
                    Ok(host) if host.connection_lost().await => {
                        Err(ProviderError::ConnectionLost {
                            target: host.describe(),
                            cause: error.to_string(),
                        })
                    }
                    _ => Err(error),
                }
            }
            result => result,
        }
    }
}

impl TraefikProvider {
    /// Carries out one action (see [`Provider::apply`]).
    async fn apply_action(
        &self,
        action: &Action,
        context: &ApplyContext,
    ) -> Result<ApplyOutcome, ProviderError> {
        let address = &action.address;
        if !self.owns(address) {
            return Err(ProviderError::failed(format!(
                "the traefik provider does not manage `{address}`"
            )));
        }
        let droplet_address = self.droplet_address(context);

        if action.kind == ActionKind::Delete {
            let prior = action.prior.as_ref().ok_or_else(|| {
                ProviderError::failed(format!(
                    "cannot delete `{address}`: nothing was recorded for it"
                ))
            })?;
            let files = managed_files(address, &prior.attributes).map_err(spec_failure)?;
            let host = self.host(droplet_address).await?;
            for file in files {
                host.remove_file(&file.path).await.map_err(host_failure)?;
            }
            if let Ok(Some(certificate)) =
                DefaultCertificateFiles::from_attributes(&prior.attributes)
            {
                for path in [&certificate.certificate, &certificate.key] {
                    host.remove_file(path).await.map_err(host_failure)?;
                }
            }
            return Ok(ApplyOutcome::Deleted);
        }

        let desired = action.desired.as_ref().ok_or_else(|| {
            ProviderError::failed(format!(
                "cannot apply `{address}`: the action has no desired resource"
            ))
        })?;
        // Render again and insist on the planned bytes: apply writes exactly what the
        // plan showed, or stops.
        let mut prepared = desired.clone();
        let rendered = self.rendered(desired)?;
        for (attribute, value) in &rendered {
            if let Some(planned) = desired.attributes.get(attribute) {
                if planned != value {
                    return Err(ProviderError::Failed {
                        message: format!(
                            "`{address}`: the file rendered now differs from the one in the plan (`{attribute}`)"
                        ),
                        detail: None,
                        hint: Some("run `stackctl plan` again and review the new plan".to_string()),
                    });
                }
            }
        }
        prepared.attributes.extend(rendered);
        let files = managed_files(address, &prepared.attributes).map_err(spec_failure)?;

        let host = self.host(droplet_address).await?;
        let is_static_file = address.name() == STATIC_FILE_NAME && address.kind() == "file";
        let default_certificate =
            DefaultCertificateFiles::from_attributes(&prepared.attributes).map_err(spec_failure)?;
        if let (true, Some(certificate)) = (is_static_file, &default_certificate) {
            // Before the TLS options file names them.
            self.ensure_default_certificate(host.as_ref(), certificate, &prepared.attributes)
                .await?;
        }
        // Adopting records the rendered files: those whose copy on the host differs (a
        // basic-auth file hashed with another state's salt, a file edited by hand) are
        // written, so that what is recorded is what is on disk and one apply converges.
        let mut to_write: Vec<&ManagedFile> = files.iter().collect();
        if action.kind == ActionKind::Adopt {
            let paths: Vec<String> = files.iter().map(|file| file.path.clone()).collect();
            let found = host.read_files(&paths).await.map_err(host_failure)?;
            let mut differing = Vec::new();
            for (file, found) in files.iter().zip(found) {
                let value = prepared.attributes.get(file.content_attribute);
                let wanted = content_bytes(address, file.content_attribute, value)?;
                if found.as_deref() != Some(wanted.as_slice()) {
                    differing.push(file);
                }
            }
            to_write = differing;
        }
        for file in to_write {
            let value = prepared.attributes.get(file.content_attribute);
            let bytes = content_bytes(address, file.content_attribute, value)?;
            // Credential hashes stay readable by the owner (Traefik runs as root in its
            // image) and no one else.
            let mode = if matches!(value, Some(Value::Secret(_))) {
                0o600
            } else {
                0o644
            };
            let staging = temp_dir(&prepared.attributes, &file.path);
            host.write_file(&file.path, &bytes, mode, &staging)
                .await
                .map_err(host_failure)?;
        }
        if is_static_file {
            // Files Traefik would load that the stack did not write: the ones the plan
            // showed (never more), by name, in the dynamic directory.
            let directory = dynamic_directory(&prepared.attributes).map_err(spec_failure)?;
            for name in planned_unmanaged_files(action) {
                host.remove_file(&format!("{directory}/{name}"))
                    .await
                    .map_err(host_failure)?;
            }
        }
        // A moved file: the old one would keep its router or middleware alive.
        if let Some(prior) = &action.prior {
            if let Ok(old_files) = managed_files(address, &prior.attributes) {
                for old in old_files {
                    if files.iter().all(|file| file.path != old.path) {
                        host.remove_file(&old.path).await.map_err(host_failure)?;
                    }
                }
            }
        }
        let mut recorded = RecordedResource::from_desired(&prepared, Some(files[0].path.clone()));
        if is_static_file {
            // Computed, outside the hash: no file but the stack's is left.
            recorded
                .attributes
                .insert(UNMANAGED_FILES.into(), Value::List(Vec::new()));
            if default_certificate.is_some() {
                recorded
                    .attributes
                    .insert(DEFAULT_CERTIFICATE_FILES.into(), Value::text(PRESENT));
            }
        }
        Ok(ApplyOutcome::Recorded(recorded))
    }
}

impl TraefikProvider {
    /// Writes a new self-signed default certificate and its key unless both are on the
    /// host already (generated once per stack; a missing file means a new pair). The
    /// key goes to the host only, readable by its owner (Traefik runs as root).
    async fn ensure_default_certificate(
        &self,
        host: &dyn Host,
        files: &DefaultCertificateFiles,
        attributes: &Attributes,
    ) -> Result<(), ProviderError> {
        let listed = host
            .list_files(&files.directory())
            .await
            .map_err(host_failure)?;
        if files.both_listed(&listed) {
            return Ok(());
        }
        let generated = crate::default_certificate::generate(
            &format!("stackctl default certificate ({})", self.stack),
            std::time::SystemTime::now(),
        )
        .map_err(|cause| {
            ProviderError::failed(format!(
                "cannot generate the edge's default certificate: {cause}"
            ))
        })?;
        let staging = temp_dir(attributes, &files.certificate);
        // The key first: the certificate's presence is what says the pair is complete to
        // nobody, but a certificate without its key would make Traefik fall back anyway.
        host.write_file(&files.key, generated.key_pem.as_bytes(), 0o600, &staging)
            .await
            .map_err(host_failure)?;
        host.write_file(
            &files.certificate,
            generated.certificate_pem.as_bytes(),
            0o644,
            &staging,
        )
        .await
        .map_err(host_failure)?;
        Ok(())
    }
}

/// The header line the provider writes for a resource, exposed for tools that want to
/// recognise stackctl's files.
pub fn file_header(stack: &str, address: &Address) -> String {
    header(&format!("stack {stack}, {address}"))
}
