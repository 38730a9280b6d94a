//! `DigitalOceanProvider`: reconciles `ssh_key`, `droplet`, `firewall` and `dns_record`
//! resources (attributes as docs/resources.md defines them) through [`Client`].
//!
//! Reading costs a constant number of calls per kind: one tagged droplet list, one
//! firewall list, one record list per domain, and one fingerprint lookup per key (the
//! key *list* has its own 10-per-minute limit). Live attributes come back in exactly
//! the shape lowering produces, with lists in the order of the recorded (or desired)
//! value whenever they hold the same items, so the planner sees a difference only
//! where one exists.

mod attributes;
mod changes;
mod dns_record;
mod droplet;
mod entries;
mod firewall;
mod ssh_key;

use std::time::Duration;

use async_trait::async_trait;
use stackctl_provider::{
    Action, ActionKind, Address, ApplyContext, ApplyOutcome, AttributeSchema, KindSchema,
    LiveResource, Provider, ProviderError, ReadRequest, RecordedResource, Resource,
};
use tokio::sync::Mutex;

use crate::client::{Client, ClientConfig, ClientError, PollPolicy, TOKEN_VARIABLE};
use crate::fingerprint::ssh_fingerprint;
use attributes::{recorded_from_live, resolve, text_of};
use dns_record::{record_attributes, split_record_id};
use droplet::{droplet_attributes, droplet_id};
use firewall::firewall_attributes;
use ssh_key::key_attributes;

pub const PROVIDER_NAME: &str = "digitalocean";

const SSH_KEY: &str = "ssh_key";
const DROPLET: &str = "droplet";
const FIREWALL: &str = "firewall";
const DNS_RECORD: &str = "dns_record";

/// Attributes the provider computes, per kind: never part of the desired hash.
const COMPUTED: &[&str] = &["id", "ipv4", "status", "fingerprint", "domain_created"];

/// Tunables that tests and the emulator want shorter than production.
#[derive(Clone, Debug, Default)]
pub struct ProviderOptions {
    /// How often and how long to poll actions and a starting droplet.
    pub poll: PollPolicy,
}

impl ProviderOptions {
    /// `STACKCTL_DO_POLL_INTERVAL_MS` and `STACKCTL_DO_READY_TIMEOUT_SECONDS` override
    /// the defaults (3 s, 600 s): against the emulator, 50 ms polling keeps applies fast.
    pub fn from_env() -> Self {
        let mut options = ProviderOptions::default();
        if let Some(milliseconds) = env_number("STACKCTL_DO_POLL_INTERVAL_MS") {
            options.poll.interval = Duration::from_millis(milliseconds);
        }
        if let Some(seconds) = env_number("STACKCTL_DO_READY_TIMEOUT_SECONDS") {
            options.poll.timeout = Duration::from_secs(seconds);
        }
        options
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

pub struct DigitalOceanProvider {
    client: Client,
    options: ProviderOptions,
    /// Set once `GET /v2/account` succeeded, so credentials are checked once per run.
    credentials_checked: Mutex<bool>,
}

impl DigitalOceanProvider {
    pub fn new(config: ClientConfig, options: ProviderOptions) -> Result<Self, ProviderError> {
        let client = Client::new(config)
            .map_err(|error| failed("cannot set up the DigitalOcean client", error))?;
        Ok(DigitalOceanProvider {
            client,
            options,
            credentials_checked: Mutex::new(false),
        })
    }

    /// Token, API URL and polling from the environment. A missing token is reported
    /// by the first call that needs the API, as [`ProviderError::Credentials`].
    pub fn from_env() -> Result<Self, ProviderError> {
        DigitalOceanProvider::new(ClientConfig::from_env(), ProviderOptions::from_env())
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Fails with [`ProviderError::Credentials`] when the token is missing or refused.
    /// Called before any read, import or change.
    pub async fn check_credentials(&self) -> Result<(), ProviderError> {
        let mut checked = self.credentials_checked.lock().await;
        if *checked {
            return Ok(());
        }
        self.client
            .check_credentials()
            .await
            .map_err(|error| failed("cannot verify the DigitalOcean token", error))?;
        *checked = true;
        Ok(())
    }

    fn stack_tag(stack: &str) -> String {
        format!("stackctl:{stack}")
    }
}

/// Maps a client error to the engine's vocabulary; credentials problems name the variable.
fn failed(context: &str, error: ClientError) -> ProviderError {
    if matches!(error.root(), ClientError::MissingToken) {
        return ProviderError::Credentials {
            message: format!("no DigitalOcean API token: set {TOKEN_VARIABLE}"),
            hint: format!(
                "export {TOKEN_VARIABLE}=<a personal access token with read and write scope> \
                 (DIGITALOCEAN_ACCESS_TOKEN is read too); nothing was changed"
            ),
        };
    }
    if error.is_credentials() {
        return ProviderError::Credentials {
            message: format!("DigitalOcean rejected the token in {TOKEN_VARIABLE}: {error}"),
            hint: format!("set {TOKEN_VARIABLE} to a valid token with read and write scope; nothing was changed"),
        };
    }
    let detail = error.api().map(|api| {
        format!(
            "status {}, id `{}`, message `{}`{}",
            api.status,
            api.id,
            api.message,
            api.request_id
                .as_ref()
                .map(|request_id| format!(", request id {request_id}"))
                .unwrap_or_default()
        )
    });
    ProviderError::Failed {
        message: format!("{context}: {error}"),
        detail,
        hint: None,
    }
}

#[async_trait]
impl Provider for DigitalOceanProvider {
    fn name(&self) -> &'static str {
        PROVIDER_NAME
    }

    fn kinds(&self) -> Vec<KindSchema> {
        let kind = |kind: &'static str, attributes: Vec<AttributeSchema>| KindSchema {
            kind,
            provider: PROVIDER_NAME,
            attributes,
        };
        vec![
            kind(
                SSH_KEY,
                vec![
                    AttributeSchema::plain("name"),
                    AttributeSchema::replaces("public_key"),
                    AttributeSchema::computed("fingerprint"),
                    AttributeSchema::computed("id"),
                ],
            ),
            kind(
                DROPLET,
                vec![
                    AttributeSchema::plain("name"),
                    AttributeSchema::replaces("region"),
                    AttributeSchema::plain("size"),
                    AttributeSchema::replaces("image"),
                    // Installed only at creation: a change needs a new droplet.
                    AttributeSchema::replaces("ssh_keys"),
                    AttributeSchema::replaces("user_data_hash"),
                    AttributeSchema::plain("tags"),
                    AttributeSchema::plain("monitoring"),
                    AttributeSchema::plain("ipv6"),
                    AttributeSchema::computed("id"),
                    AttributeSchema::computed("ipv4"),
                    AttributeSchema::computed("status"),
                ],
            ),
            kind(
                FIREWALL,
                vec![
                    AttributeSchema::plain("name"),
                    AttributeSchema::plain("inbound_rules"),
                    AttributeSchema::plain("outbound_rules"),
                    AttributeSchema::plain("droplet_ids"),
                    AttributeSchema::computed("id"),
                ],
            ),
            kind(
                DNS_RECORD,
                vec![
                    AttributeSchema::replaces("domain"),
                    AttributeSchema::replaces("type"),
                    AttributeSchema::replaces("name"),
                    AttributeSchema::plain("data"),
                    AttributeSchema::plain("ttl"),
                    AttributeSchema::computed("id"),
                    AttributeSchema::computed("domain_created"),
                ],
            ),
        ]
    }

    async fn read(&self, request: &ReadRequest) -> Result<Vec<LiveResource>, ProviderError> {
        self.check_credentials().await?;
        let mut found = Vec::new();
        self.read_ssh_keys(request, &mut found).await?;
        self.read_droplets(request, &mut found).await?;
        self.read_firewalls(request, &mut found).await?;
        self.read_records(request, &mut found).await?;
        Ok(found)
    }

    async fn preflight(&self) -> Result<(), ProviderError> {
        self.check_credentials().await
    }

    async fn begin_apply(&self, _context: &ApplyContext) -> Result<(), ProviderError> {
        self.check_credentials().await
    }

    async fn import(
        &self,
        address: &Address,
        id: &str,
        desired: Option<&Resource>,
        _context: &ApplyContext,
    ) -> Result<RecordedResource, ProviderError> {
        self.check_credentials().await?;
        let reference = desired.map(|desired| &desired.attributes);
        let not_found = || {
            ProviderError::failed(format!(
                "no {} with id `{id}` to import as `{address}`",
                address.kind()
            ))
        };
        let (live_id, attributes) = match address.kind() {
            DROPLET => {
                let droplet = self
                    .client
                    .get_droplet(droplet_id(id, address)?)
                    .await
                    .map_err(|error| failed("cannot read the droplet", error))?
                    .ok_or_else(not_found)?;
                (
                    droplet.id.to_string(),
                    droplet_attributes(&droplet, reference),
                )
            }
            SSH_KEY => {
                let key = self
                    .client
                    .get_ssh_key(id)
                    .await
                    .map_err(|error| failed("cannot read the SSH key", error))?
                    .ok_or_else(not_found)?;
                (key.id.to_string(), key_attributes(&key, reference))
            }
            FIREWALL => {
                let firewall = self
                    .client
                    .get_firewall(id)
                    .await
                    .map_err(|error| failed("cannot read the firewall", error))?
                    .ok_or_else(not_found)?;
                (
                    firewall.id.clone(),
                    firewall_attributes(&firewall, reference),
                )
            }
            DNS_RECORD => {
                let (domain, number) = split_record_id(id, desired)?;
                let record = self
                    .client
                    .get_record(&domain, number)
                    .await
                    .map_err(|error| failed("cannot read the record", error))?
                    .ok_or_else(not_found)?;
                (
                    record.id.to_string(),
                    record_attributes(&domain, &record, reference),
                )
            }
            other => {
                return Err(ProviderError::failed(format!(
                    "the digitalocean provider does not own `{other}`"
                )))
            }
        };
        Ok(recorded_from_live(address, live_id, attributes, desired))
    }

    async fn apply(
        &self,
        action: &Action,
        context: &ApplyContext,
    ) -> Result<ApplyOutcome, ProviderError> {
        self.check_credentials().await?;
        let desired = match &action.desired {
            Some(desired) => Some(resolve(desired, context)?),
            None => None,
        };
        let need_desired = || {
            desired.as_ref().ok_or_else(|| {
                ProviderError::failed(format!(
                    "`{}`: the action carries no desired resource",
                    action.address
                ))
            })
        };
        let prior = action.prior.as_ref();
        match action.kind {
            ActionKind::Create => Ok(ApplyOutcome::Recorded(
                self.create(need_desired()?, context, None).await?,
            )),
            ActionKind::Update => Ok(ApplyOutcome::Recorded(
                self.update(need_desired()?, prior, action.live_id.as_deref())
                    .await?,
            )),
            ActionKind::Delete => {
                if let Some(prior) = prior {
                    self.delete(prior).await?;
                }
                Ok(ApplyOutcome::Deleted)
            }
            ActionKind::Run => Err(ProviderError::failed(format!(
                "`{}`: the digitalocean provider runs no tasks",
                action.address
            ))),
            ActionKind::Adopt => {
                let id = action.live_id.as_deref().ok_or_else(|| {
                    ProviderError::failed(format!("`{}`: nothing found to adopt", action.address))
                })?;
                Ok(ApplyOutcome::Recorded(
                    self.import(&action.address, id, desired.as_ref(), context)
                        .await?,
                ))
            }
            ActionKind::ReplaceCreateBeforeDestroy | ActionKind::ReplaceDestroyBeforeCreate => {
                let desired = need_desired()?;
                let prior_id = prior.and_then(|prior| prior.id.as_deref());
                // Two keys with one fingerprint cannot coexist: such a key goes first.
                let same_key = desired.address.kind() == SSH_KEY
                    && prior
                        .and_then(|prior| text_of(prior.attributes.get("public_key")))
                        .and_then(|key| ssh_fingerprint(&key))
                        == text_of(desired.attributes.get("public_key"))
                            .and_then(|key| ssh_fingerprint(&key));
                let destroy_first =
                    action.kind == ActionKind::ReplaceDestroyBeforeCreate || same_key;
                if destroy_first {
                    if let Some(prior) = prior {
                        self.delete(prior).await?;
                    }
                    return Ok(ApplyOutcome::Recorded(
                        self.create(desired, context, None).await?,
                    ));
                }
                let except = prior_id.and_then(|id| id.parse::<i64>().ok());
                let recorded = self.create(desired, context, except).await?;
                if let Some(prior) = prior {
                    self.delete(prior).await?;
                }
                Ok(ApplyOutcome::Recorded(recorded))
            }
        }
    }
}
