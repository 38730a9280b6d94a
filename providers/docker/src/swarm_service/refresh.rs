//! Refresh of the stack's swarm services: one round trip for all of them (services,
//! tasks, networks and nodes pipelined), and none at all when no resource is one — a
//! single host's refresh costs what it did, and its daemon need not be in a swarm.

use std::collections::BTreeMap;

use serde_json::Value as Json;
use stackctl_provider::{Address, Attributes, LiveResource, ProviderError, ReadRequest};

use super::live::live_swarm_service_attributes;
use super::requests;
use super::SWARM_SERVICE;
use crate::api;
use crate::labels::{container_resource, label};
use crate::provider::DockerProvider;
use crate::provider_error::{failed, from_client};

impl DockerProvider {
    pub(crate) async fn read_swarm_services(
        &self,
        request: &ReadRequest,
    ) -> Result<Vec<LiveResource>, ProviderError> {
        let mut references: BTreeMap<Address, Attributes> = BTreeMap::new();
        for resource in &request.desired {
            if resource.address.kind() == SWARM_SERVICE {
                references.insert(resource.address.clone(), resource.attributes.clone());
            }
        }
        let mut recorded_ids: BTreeMap<Address, String> = BTreeMap::new();
        for recorded in &request.recorded {
            if recorded.address.kind() == SWARM_SERVICE {
                // Recorded wins: live is compared with what the last apply left.
                references.insert(recorded.address.clone(), recorded.attributes.clone());
                if let Some(id) = &recorded.id {
                    recorded_ids.insert(recorded.address.clone(), id.clone());
                }
            }
        }
        if references.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client(self.recorded_droplet_ip(request)).await?;
        let mut connection = client.connect().await.map_err(from_client)?;
        let answers = connection
            .batch(&[
                requests::list_services(&request.stack),
                requests::list_all_tasks(),
                api::list_networks(&request.stack),
                requests::list_nodes(),
            ])
            .await
            .map_err(from_client)?;
        // A daemon in no swarm yet (the first plan, before the swarm is formed) answers
        // 503 to every swarm question: none of the stack's swarm services exists.
        if answers.first().is_some_and(|answer| answer.status == 503) {
            tracing::debug!(
                "the target's Docker is not a swarm manager (yet): no swarm service is live"
            );
            return Ok(Vec::new());
        }
        let mut parsed = Vec::new();
        for (answer, what) in answers
            .into_iter()
            .zip(["services", "tasks", "networks", "nodes"])
        {
            let answer = api::check("GET", what, answer).map_err(|error| {
                failed(
                    format!("cannot read the swarm's {what}: {error}"),
                    Some("is the target a swarm manager? (`docker info` on it says `Swarm: active` and `Is Manager: true`)".into()),
                )
            })?;
            parsed.push(
                answer
                    .json()
                    .map_err(|error| failed(error.to_string(), None))?,
            );
        }
        let list = |json: &Json| json.as_array().cloned().unwrap_or_default();
        let (services, tasks, networks, nodes) = (
            list(&parsed[0]),
            list(&parsed[1]),
            list(&parsed[2]),
            list(&parsed[3]),
        );
        let network_names: BTreeMap<String, String> = networks
            .iter()
            .filter_map(|network| {
                Some((
                    network["Id"].as_str()?.to_string(),
                    network["Name"].as_str()?.to_string(),
                ))
            })
            .collect();
        let node_names: BTreeMap<String, String> = nodes
            .iter()
            .filter_map(|node| {
                Some((
                    node["ID"].as_str()?.to_string(),
                    node["Description"]["Hostname"].as_str()?.to_string(),
                ))
            })
            .collect();

        // One service per resource: the recorded one, else the newest (a switch
        // interrupted between create and remove leaves two).
        let mut by_address: BTreeMap<Address, Vec<&Json>> = BTreeMap::new();
        for service in &services {
            let Some(address) = container_resource(&service["Spec"], &request.stack)
                .and_then(|text| Address::parse(&text).ok())
                .filter(|address| address.kind() == SWARM_SERVICE)
            else {
                continue;
            };
            by_address.entry(address).or_default().push(service);
        }
        let mut live = Vec::new();
        for (address, candidates) in by_address {
            let recorded = recorded_ids.get(&address).map(String::as_str);
            let Some(service) = candidates
                .iter()
                .find(|service| service["ID"].as_str() == recorded)
                .or_else(|| {
                    candidates.iter().max_by_key(|service| {
                        service["CreatedAt"].as_str().unwrap_or("").to_string()
                    })
                })
            else {
                continue;
            };
            let id = service["ID"].as_str().unwrap_or("").to_string();
            let own_tasks: Vec<&Json> = tasks
                .iter()
                .filter(|task| task["ServiceID"].as_str() == Some(id.as_str()))
                .collect();
            let attributes = live_swarm_service_attributes(
                service,
                &own_tasks,
                &network_names,
                &node_names,
                references.get(&address),
                &request.salt,
            );
            live.push(LiveResource {
                address,
                id: Some(id),
                attributes,
                owned: label(&service["Spec"], api::LABEL_STACK) == Some(request.stack.as_str()),
            });
        }
        Ok(live)
    }
}
