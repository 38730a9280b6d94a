//! Images: one resource per distinct build (several services may share a context and
//! Dockerfile) or per distinct reference, plus the edge's Traefik image.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use stackctl_provider::{Address, Resource, Value};

use super::{Lowering, DOCKER};
use crate::config::{PullPolicy, ServiceConfig};

/// The image a service runs: the image resource's name and what goes into the
/// container's `image` (a build's tag or a pulled reference).
pub(super) struct ServiceImage {
    pub name: String,
    pub value: Value,
}

impl Lowering<'_> {
    /// Lowers the images; returns service name → the image it runs. A service with
    /// neither `image` nor `build` gets none (validation has reported it).
    pub(super) fn images(&self, resources: &mut Vec<Resource>) -> BTreeMap<String, ServiceImage> {
        let mut image_of_service: BTreeMap<String, String> = BTreeMap::new();
        let mut images: BTreeMap<String, Resource> = BTreeMap::new();
        // Grouping key → the image resource's name: a lookup, not a scan of every image
        // per service (which made lowering quadratic in the number of services).
        let mut image_by_key: BTreeMap<String, String> = BTreeMap::new();
        for (name, service) in &self.config.services {
            let Some(key) = self.image_key(service) else {
                continue;
            };
            let image_name = match image_by_key.get(&key) {
                Some(image_name) => image_name.clone(),
                None => {
                    images.insert(name.clone(), self.service_image(name, service));
                    image_by_key.insert(key, name.clone());
                    name.clone()
                }
            };
            image_of_service.insert(name.clone(), image_name);
        }
        if let Some(edge) = &self.config.edge {
            images.insert(
                "edge".to_string(),
                Resource::new(Address::new("image", "edge"), DOCKER)
                    .with("reference", self.text(&edge.image))
                    .with("pull", PullPolicy::of(edge.pull).as_str()),
            );
        }
        let values: BTreeMap<&String, Value> = images
            .iter()
            .filter_map(|(name, image)| {
                let attributes = &image.attributes;
                let value = attributes
                    .get("tag")
                    .or_else(|| attributes.get("reference"))?;
                Some((name, value.clone()))
            })
            .collect();
        let service_images = image_of_service
            .into_iter()
            .map(|(service, name)| {
                let value = values.get(&name).cloned().unwrap_or(Value::Null);
                (service, ServiceImage { name, value })
            })
            .collect();
        for image in images.into_values() {
            resources.push(self.on_host(image));
        }
        service_images
    }

    /// What makes two services share one image: the same build context and
    /// Dockerfile, or the same reference.
    fn image_key(&self, service: &ServiceConfig) -> Option<String> {
        match (&service.build, &service.image) {
            (Some(context), _) => Some(format!(
                "build:{context}:{}:{}",
                service.dockerfile.as_deref().unwrap_or("Dockerfile"),
                serde_json::to_string(&self.build_args(service)).unwrap_or_default()
            )),
            (None, Some(reference)) => Some(format!("image:{}", self.text(reference))),
            (None, None) => None,
        }
    }

    /// The image resource of the first service using it: a build tagged with a short
    /// digest of its context, or a reference to pull.
    fn service_image(&self, name: &str, service: &ServiceConfig) -> Resource {
        let image = Resource::new(Address::new("image", name), DOCKER);
        match (&service.build, &service.image) {
            (Some(context), _) => {
                let hash = self
                    .inputs
                    .context_hashes
                    .get(context)
                    .cloned()
                    .unwrap_or_default();
                let build_args = self.build_args(service);
                let short = build_digest(&hash, &build_args)
                    .chars()
                    .take(12)
                    .collect::<String>();
                let image = if build_args.is_empty() {
                    image
                } else {
                    image.with(
                        "build_args",
                        Value::Map(
                            build_args
                                .iter()
                                .map(|(name, value)| (name.clone(), Value::text(value.clone())))
                                .collect(),
                        ),
                    )
                };
                image
                    .with("tag", format!("{}/{name}:{short}", self.stack))
                    .with("context", clean_relative(context))
                    .with("context_hash", hash)
                    .with(
                        "dockerfile",
                        service
                            .dockerfile
                            .clone()
                            .unwrap_or_else(|| "Dockerfile".into()),
                    )
            }
            (None, Some(reference)) => image
                .with("reference", self.text(reference))
                .with("pull", PullPolicy::of(service.pull).as_str()),
            (None, None) => image,
        }
    }

    /// A service's build arguments with their variables resolved (validation refused
    /// secrets here: Docker keeps build arguments in the image's history).
    fn build_args(&self, service: &ServiceConfig) -> BTreeMap<String, String> {
        service
            .build_args
            .iter()
            .map(|(name, value)| (name.clone(), self.text(value)))
            .collect()
    }
}

/// What a built image's tag is named after: its context's hash, and its build arguments
/// when it has any (so changing one is a new tag, hence a build and a service update).
fn build_digest(context_hash: &str, build_args: &BTreeMap<String, String>) -> String {
    let context = context_hash.trim_start_matches("sha256:");
    if build_args.is_empty() {
        return context.to_string();
    }
    let canonical = serde_json::to_string(build_args).unwrap_or_default();
    let digest = Sha256::digest(format!("{context}\n{canonical}").as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A build context as written, relative to the stack file (so moving the checkout does
/// not change hashes): `./apps/api/` → `apps/api`.
fn clean_relative(path: &str) -> String {
    let trimmed = path.trim_start_matches("./").trim_end_matches('/');
    if trimmed.is_empty() {
        ".".to_string()
    } else {
        trimmed.to_string()
    }
}
