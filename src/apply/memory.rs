//! An in-memory provider: the executor's test double, and the target of the apply
//! benchmark. It keeps "live" resources in a map, and can be scripted per address to
//! take time, fail, or find its target unreachable. Every call is recorded with its
//! start and end, so tests can see what overlapped.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use stackctl_provider::{
    Action, ActionKind, Address, ApplyContext, ApplyOutcome, AttributeSchema, KindSchema,
    LiveResource, Provider, ProviderError, ReadRequest, RecordedResource, Value,
};

/// What the provider does when asked to apply one address.
#[derive(Clone, Debug, Default)]
pub struct Behaviour {
    pub delay: Duration,
    pub fail: Option<String>,
    pub unreachable: bool,
}

#[derive(Clone, Debug)]
pub struct Call {
    pub address: Address,
    pub kind: ActionKind,
    pub started: Instant,
    pub finished: Instant,
}

pub struct MemoryProvider {
    name: &'static str,
    kinds: Vec<&'static str>,
    /// A real provider whose kinds and `prepare` this one takes over, so that it plans
    /// exactly what the real one would (the benchmark), while applying in memory.
    imitated: Option<Arc<dyn Provider>>,
    live: Mutex<BTreeMap<Address, LiveResource>>,
    script: Mutex<BTreeMap<Address, Behaviour>>,
    calls: Mutex<Vec<Call>>,
    next_id: Mutex<u64>,
}

impl MemoryProvider {
    /// A provider called `name` owning `kinds`; every attribute updates in place except
    /// `image` and `region`, which force a replacement (enough to exercise the planner).
    pub fn new(name: &'static str, kinds: &[&'static str]) -> Self {
        MemoryProvider {
            name,
            kinds: kinds.to_vec(),
            imitated: None,
            live: Mutex::new(BTreeMap::new()),
            script: Mutex::new(BTreeMap::new()),
            calls: Mutex::new(Vec::new()),
            next_id: Mutex::new(1),
        }
    }

    /// A provider with `real`'s name, kinds and derived attributes (`prepare`), which
    /// reads and applies in memory.
    pub fn imitating(real: Arc<dyn Provider>) -> Self {
        MemoryProvider {
            imitated: Some(real.clone()),
            ..MemoryProvider::new(real.name(), &[])
        }
    }

    pub fn script(&self, address: &Address, behaviour: Behaviour) {
        if let Ok(mut script) = self.script.lock() {
            script.insert(address.clone(), behaviour);
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls
            .lock()
            .map(|calls| calls.clone())
            .unwrap_or_default()
    }

    pub fn live(&self) -> BTreeMap<Address, LiveResource> {
        self.live
            .lock()
            .map(|live| live.clone())
            .unwrap_or_default()
    }

    /// Changes a live attribute behind the engine's back (drift).
    pub fn tamper(&self, address: &Address, attribute: &str, value: Value) {
        if let Ok(mut live) = self.live.lock() {
            if let Some(resource) = live.get_mut(address) {
                resource.attributes.insert(attribute.to_string(), value);
            }
        }
    }

    /// Removes a live resource behind the engine's back.
    pub fn vanish(&self, address: &Address) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(address);
        }
    }

    /// Puts a resource on the target as if someone created it (owned = labelled ours).
    pub fn plant(&self, resource: LiveResource) {
        if let Ok(mut live) = self.live.lock() {
            live.insert(resource.address.clone(), resource);
        }
    }
}

#[async_trait]
impl Provider for MemoryProvider {
    fn name(&self) -> &'static str {
        self.name
    }

    fn kinds(&self) -> Vec<KindSchema> {
        if let Some(real) = &self.imitated {
            return real.kinds();
        }
        self.kinds
            .iter()
            .map(|kind| KindSchema {
                kind,
                provider: self.name,
                attributes: vec![
                    AttributeSchema::replaces("image"),
                    AttributeSchema::replaces("region"),
                    AttributeSchema::computed("id"),
                ],
            })
            .collect()
    }

    fn prepare(&self, desired: &mut stackctl_provider::Resource) -> Result<(), ProviderError> {
        match &self.imitated {
            Some(real) => real.prepare(desired),
            None => Ok(()),
        }
    }

    async fn read(&self, _request: &ReadRequest) -> Result<Vec<LiveResource>, ProviderError> {
        Ok(self.live().into_values().collect())
    }

    async fn apply(
        &self,
        action: &Action,
        _context: &ApplyContext,
    ) -> Result<ApplyOutcome, ProviderError> {
        let started = Instant::now();
        let behaviour = self
            .script
            .lock()
            .ok()
            .and_then(|script| script.get(&action.address).cloned())
            .unwrap_or_default();
        if !behaviour.delay.is_zero() {
            tokio::time::sleep(behaviour.delay).await;
        }
        let record = |calls: &Mutex<Vec<Call>>| {
            if let Ok(mut calls) = calls.lock() {
                calls.push(Call {
                    address: action.address.clone(),
                    kind: action.kind,
                    started,
                    finished: Instant::now(),
                });
            }
        };
        if behaviour.unreachable {
            record(&self.calls);
            return Err(ProviderError::Unreachable {
                target: "memory".into(),
                cause: "scripted".into(),
            });
        }
        if let Some(message) = behaviour.fail {
            record(&self.calls);
            return Err(ProviderError::failed(message));
        }
        let outcome = match action.kind {
            ActionKind::Delete => {
                if let Ok(mut live) = self.live.lock() {
                    live.remove(&action.address);
                }
                ApplyOutcome::Deleted
            }
            _ => {
                let desired = action.desired.as_ref().ok_or_else(|| {
                    ProviderError::failed(format!("`{}` has no desired attributes", action.address))
                })?;
                let id = match (&action.kind, &action.prior, &action.live_id) {
                    (ActionKind::Update, Some(prior), _) => prior.id.clone(),
                    (ActionKind::Adopt, _, Some(id)) => Some(id.clone()),
                    _ => {
                        let mut next = self
                            .next_id
                            .lock()
                            .map_err(|_| ProviderError::failed("poisoned"))?;
                        *next += 1;
                        Some(format!("mem-{}", *next))
                    }
                };
                let mut recorded = RecordedResource::from_desired(desired, id.clone());
                if let Some(id) = &id {
                    recorded
                        .attributes
                        .insert("id".into(), Value::text(id.clone()));
                }
                if let Ok(mut live) = self.live.lock() {
                    live.insert(
                        action.address.clone(),
                        LiveResource {
                            address: action.address.clone(),
                            id,
                            attributes: recorded.attributes.clone(),
                            owned: true,
                        },
                    );
                }
                ApplyOutcome::Recorded(recorded)
            }
        };
        record(&self.calls);
        Ok(outcome)
    }
}
