//! `--replace ADDRESS` on `plan` and `apply`: checked against stack.toml, then forced
//! into the plan (`crate::plan::replace`).

use stackctl_provider::Address;

use super::Session;
use crate::plan::Plan;

/// A `--replace` address that stack.toml does not declare.
#[derive(Debug, thiserror::Error)]
#[error("`--replace {address}`: no such resource in stack.toml")]
pub struct UnknownReplace {
    pub address: Address,
    /// The nearest addresses stack.toml declares, best first.
    pub nearest: Vec<String>,
}

impl Session {
    /// Refuses addresses stack.toml does not declare, with the nearest ones it does.
    pub fn check_replace(&self, addresses: &[Address]) -> Result<(), UnknownReplace> {
        for address in addresses {
            if self
                .desired
                .iter()
                .any(|resource| &resource.address == address)
            {
                continue;
            }
            let wanted = address.to_string();
            let mut scored: Vec<(f64, String)> = self
                .desired
                .iter()
                .map(|resource| resource.address.to_string())
                .map(|name| (strsim::jaro_winkler(&wanted, &name), name))
                .filter(|(score, _)| *score > 0.7)
                .collect();
            scored.sort_by(|left, right| right.0.total_cmp(&left.0).then(left.1.cmp(&right.1)));
            return Err(UnknownReplace {
                address: address.clone(),
                nearest: scored.into_iter().take(3).map(|(_, name)| name).collect(),
            });
        }
        Ok(())
    }

    /// Replaces each of `addresses` in `plan`, with the reason "replace requested".
    pub fn force_replace(&self, plan: &mut Plan, addresses: &[Address]) {
        if addresses.is_empty() {
            return;
        }
        let empty = std::collections::BTreeMap::new();
        let recorded = self
            .state
            .as_ref()
            .map(|state| &state.resources)
            .unwrap_or(&empty);
        let schemas = self.schemas();
        crate::plan::replace::force_replace(
            plan,
            addresses,
            // Prepared by the plan's refresh already.
            self.finished_desired(None).unwrap_or(&self.desired),
            recorded,
            &|resource| schemas.get(&resource.provider, resource.address.kind()),
        );
    }
}
