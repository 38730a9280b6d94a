//! The security facts of a stack's containers, read from the daemon (`inspect`), never
//! from stack.toml: who each container runs as, what it may do, its limits, the
//! networks it joins and the ports it publishes. On a swarm, the stack's swarm services
//! too (`swarm_services`, from the manager: see `swarm_service/security.rs`), whose
//! tasks run on every node. The engine turns them into the run's security report.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};
use stackctl_provider::ProviderError;

use crate::api;
use crate::hardening::ContainerHardening;
use crate::provider::DockerProvider;
use crate::provider_error::from_client;
use crate::swarm_service::requests as swarm_requests;
use crate::swarm_service::security::{image_lookups, images_without_user, swarm_security_facts};

impl DockerProvider {
    /// Every container and network of the stack, inspected now; not the containers a
    /// replace left behind that are being stopped and removed beside this read.
    pub(crate) async fn read_security_facts(&self) -> Result<Json, ProviderError> {
        let client = self.client(None).await?;
        // Containers a replace left behind may still be stopping: they are not the stack's.
        let retiring = self.background.retiring();
        let (containers, networks, services) = tokio::join!(
            client.send_json(api::list_containers(&self.stack, None)),
            client.send_json(api::list_networks(&self.stack)),
            client.send_raw(swarm_requests::list_services(&self.stack)),
        );
        let containers = containers.map_err(from_client)?;
        let networks = networks.map_err(from_client)?;
        let services = services.map_err(from_client)?;
        let ids: Vec<&str> = containers
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .filter_map(|container| container["Id"].as_str())
            .filter(|id| !retiring.contains(*id))
            .collect();
        // Every container's inspect in one pipelined batch: one round trip, however many.
        let requests: Vec<_> = ids.iter().map(|id| api::inspect_container(id)).collect();
        let responses = client
            .connect()
            .await
            .map_err(from_client)?
            .batch(&requests)
            .await
            .map_err(from_client)?;
        let mut inspects = Vec::with_capacity(responses.len());
        for (id, response) in ids.iter().zip(responses) {
            let path = format!("/containers/{id}/json");
            let inspect = api::check("GET", &path, response)
                .and_then(|response| {
                    response.json().map_err(|error| {
                        api::ClientError::Http(crate::http::HttpError::Malformed(error.to_string()))
                    })
                })
                .map_err(from_client)?;
            inspects.push(inspect);
        }
        let mut facts = security_facts(&inspects, &networks);
        facts["swarm_services"] = json!(self.swarm_security(&client, services, &networks).await?);
        Ok(facts)
    }

    /// The stack's swarm services as the manager answered `GET /services` (`services`),
    /// with their tasks, the nodes they run on and the `USER` of each image whose spec sets
    /// none (inspected on the first manager), read in one more round trip. A daemon
    /// in no swarm (every single host) refuses the question: no swarm service.
    async fn swarm_security(
        &self,
        client: &api::DockerClient,
        services: crate::http::Response,
        networks: &Json,
    ) -> Result<Vec<Json>, ProviderError> {
        if services.status == 503 {
            return Ok(Vec::new());
        }
        let services = api::check("GET", "/services", services)
            .and_then(|answer| {
                answer.json().map_err(|error| {
                    api::ClientError::Http(crate::http::HttpError::Malformed(error.to_string()))
                })
            })
            .map_err(from_client)?;
        let services = services.as_array().cloned().unwrap_or_default();
        if services.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = services
            .iter()
            .filter_map(|service| service["ID"].as_str().map(str::to_string))
            .collect();
        let images = images_without_user(&services);
        let lookups: Vec<(String, String)> = images
            .iter()
            .flat_map(|image| {
                image_lookups(image)
                    .into_iter()
                    .map(move |lookup| (image.clone(), lookup))
            })
            .collect();
        let mut batch = vec![
            swarm_requests::list_tasks_of(&ids),
            swarm_requests::list_nodes(),
        ];
        batch.extend(lookups.iter().map(|(_, lookup)| api::inspect_image(lookup)));
        let mut answers = client
            .connect()
            .await
            .map_err(from_client)?
            .batch(&batch)
            .await
            .map_err(from_client)?;
        let image_answers = answers.split_off(2.min(answers.len()));
        // The first lookup of each image that the daemon answered; an image it does not
        // have stays unknown (reported so, not as root).
        let mut image_users: BTreeMap<String, String> = BTreeMap::new();
        for ((image, _), answer) in lookups.iter().zip(image_answers) {
            if image_users.contains_key(image) || !answer.is_success() {
                continue;
            }
            if let Ok(inspect) = answer.json() {
                // No `Config.User` (an image built with no USER, no config at all): root.
                let user = inspect["Config"]["User"].as_str().unwrap_or("");
                image_users.insert(image.clone(), user.to_string());
            }
        }
        let mut lists = Vec::new();
        for (answer, path) in answers.into_iter().zip(["/tasks", "/nodes"]) {
            let list = api::check("GET", path, answer)
                .and_then(|answer| {
                    answer.json().map_err(|error| {
                        api::ClientError::Http(crate::http::HttpError::Malformed(error.to_string()))
                    })
                })
                .map_err(from_client)?;
            lists.push(list.as_array().cloned().unwrap_or_default());
        }
        let [tasks, nodes] = [&lists[0], &lists[1]];
        Ok(swarm_security_facts(
            &services,
            tasks,
            nodes,
            networks,
            &image_users,
        ))
    }
}

/// `GET /containers/{id}/json` of each container and `GET /networks` → the facts, each
/// list sorted by name.
pub fn security_facts(inspects: &[Json], networks: &Json) -> Json {
    let internal: BTreeMap<&str, bool> = networks
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|network| {
            Some((
                network["Name"].as_str()?,
                network["Internal"].as_bool().unwrap_or(false),
            ))
        })
        .collect();
    let mut containers: Vec<Json> = inspects
        .iter()
        .map(|inspect| container_facts(inspect, &internal))
        .collect();
    containers.sort_by(|left, right| left["name"].as_str().cmp(&right["name"].as_str()));
    let networks: Vec<Json> = internal
        .iter()
        .map(|(name, internal)| json!({ "name": name, "internal": internal }))
        .collect();
    json!({ "containers": containers, "networks": networks })
}

fn container_facts(inspect: &Json, internal: &BTreeMap<&str, bool>) -> Json {
    let config = &inspect["Config"];
    let host_config = &inspect["HostConfig"];
    let hardening = ContainerHardening::of_container(host_config);
    // Docker copies the image's USER into the container's: empty means root.
    let user = config["User"].as_str().unwrap_or("");
    let user_name = user.split(':').next().unwrap_or("");
    let runs_as_root = matches!(user_name, "" | "0" | "root");
    let positive = |json: &Json| json.as_i64().filter(|number| *number > 0);
    let networks: Vec<Json> = inspect["NetworkSettings"]["Networks"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, _)| {
            json!({ "name": name, "internal": internal.get(name.as_str()).copied().unwrap_or(false) })
        })
        .collect();
    let mut ports = Vec::new();
    for (key, hosts) in host_config["PortBindings"]
        .as_object()
        .into_iter()
        .flatten()
    {
        for host in hosts.as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let host_ip = match host["HostIp"].as_str() {
                None | Some("") => "0.0.0.0",
                Some(ip) => ip,
            };
            ports.push(format!(
                "{host_ip}:{}->{key}",
                host["HostPort"].as_str().unwrap_or("")
            ));
        }
    }
    ports.sort();
    json!({
        "name": inspect["Name"].as_str().unwrap_or("").trim_start_matches('/'),
        "resource": config["Labels"][api::LABEL_RESOURCE],
        "image": config["Image"],
        "running": inspect["State"]["Running"].as_bool().unwrap_or(false),
        "user": if user.is_empty() { "root (the image's default)" } else { user },
        "runs_as_root": runs_as_root,
        "capabilities": { "dropped": hardening.cap_drop, "added": hardening.cap_add },
        "no_new_privileges": hardening.no_new_privileges,
        "privileged": hardening.privileged,
        "read_only_root": host_config["ReadonlyRootfs"].as_bool().unwrap_or(false),
        "tmpfs": hardening.tmpfs,
        "pids_limit": hardening.pids_limit,
        "memory_bytes": positive(&host_config["Memory"]),
        "cpus": positive(&host_config["NanoCpus"]).map(|nanos| nanos as f64 / 1e9),
        "networks": networks,
        "published_ports": ports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_are_what_the_daemon_says() {
        let api = json!({
            "Name": "/shop-api",
            "Config": {"Image": "shop/api:1", "User": "10001", "Labels": {"stackctl.resource": "service.api"}},
            "HostConfig": {"CapDrop": ["ALL"], "CapAdd": null, "SecurityOpt": ["no-new-privileges:true"],
                           "Privileged": false, "ReadonlyRootfs": true, "PidsLimit": 256,
                           "Memory": 268435456, "NanoCpus": 500000000, "PortBindings": {}},
            "NetworkSettings": {"Networks": {"shop_backend": {}, "shop_edge": {}}},
            "State": {"Running": true}
        });
        let edge = json!({
            "Name": "/shop-edge",
            "Config": {"Image": "traefik", "User": "", "Labels": {"stackctl.resource": "service.edge"}},
            "HostConfig": {"CapAdd": ["CAP_NET_BIND_SERVICE"], "PortBindings": {"443/tcp": [{"HostIp": "", "HostPort": "443"}]}},
            "NetworkSettings": {"Networks": {"shop_edge": {}}},
            "State": {"Running": true}
        });
        let networks = json!([{"Name": "shop_backend", "Internal": true}, {"Name": "shop_edge", "Internal": false}]);
        let facts = security_facts(&[edge, api], &networks);
        let api = &facts["containers"][0];
        assert_eq!(api["name"], "shop-api");
        assert_eq!(api["user"], "10001");
        assert_eq!(api["runs_as_root"], false);
        assert_eq!(
            api["capabilities"],
            json!({"dropped": ["ALL"], "added": []})
        );
        assert_eq!(api["no_new_privileges"], true);
        assert_eq!(api["pids_limit"], 256);
        assert_eq!(api["cpus"], 0.5);
        assert_eq!(
            api["networks"],
            json!([{"name": "shop_backend", "internal": true}, {"name": "shop_edge", "internal": false}])
        );
        let edge = &facts["containers"][1];
        assert_eq!(edge["runs_as_root"], true);
        assert_eq!(edge["capabilities"]["added"], json!(["NET_BIND_SERVICE"]));
        assert_eq!(edge["published_ports"], json!(["0.0.0.0:443->443/tcp"]));
        assert_eq!(edge["memory_bytes"], Json::Null);
        assert_eq!(
            facts["networks"][0],
            json!({"name": "shop_backend", "internal": true})
        );
    }
}
