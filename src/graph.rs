//! The dependency graph of resources: a deterministic order (dependencies first, ties
//! broken by address) and the members of any cycle. Rendering for `stackctl graph`.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::graphmap::DiGraphMap;
use stackctl_provider::Address;

/// Orders `nodes` so every node comes after its dependencies (edges point from a node to
/// what it depends on); ties are broken by address, so the order never varies. Returns
/// the members of the cycles if there are any.
pub fn dependency_order(
    dependencies: &BTreeMap<Address, Vec<Address>>,
) -> Result<Vec<Address>, Vec<Vec<Address>>> {
    let mut waiting_on: BTreeMap<&Address, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<&Address, Vec<&Address>> = BTreeMap::new();
    for (node, needs) in dependencies {
        let known: BTreeSet<&Address> = needs
            .iter()
            .filter(|need| dependencies.contains_key(*need))
            .collect();
        waiting_on.insert(node, known.len());
        for need in known {
            dependents.entry(need).or_default().push(node);
        }
    }
    let mut ready: BTreeSet<&Address> = waiting_on
        .iter()
        .filter(|(_, count)| **count == 0)
        .map(|(node, _)| *node)
        .collect();
    let mut order = Vec::with_capacity(dependencies.len());
    while let Some(node) = ready.pop_first() {
        order.push(node.clone());
        for dependent in dependents.get(node).into_iter().flatten() {
            if let Some(count) = waiting_on.get_mut(dependent) {
                *count -= 1;
                if *count == 0 {
                    ready.insert(dependent);
                }
            }
        }
    }
    if order.len() == dependencies.len() {
        return Ok(order);
    }
    Err(cycles(dependencies))
}

/// Every cycle's members, sorted.
pub fn cycles(dependencies: &BTreeMap<Address, Vec<Address>>) -> Vec<Vec<Address>> {
    let mut graph: DiGraphMap<&Address, ()> = DiGraphMap::new();
    for (node, needs) in dependencies {
        graph.add_node(node);
        for need in needs.iter().filter(|need| dependencies.contains_key(*need)) {
            graph.add_edge(node, need, ());
        }
    }
    let mut found: Vec<Vec<Address>> = petgraph::algo::tarjan_scc(&graph)
        .into_iter()
        .filter(|component| component.len() > 1 || graph.contains_edge(component[0], component[0]))
        .map(|component| {
            let mut members: Vec<Address> = component.into_iter().cloned().collect();
            members.sort();
            members
        })
        .collect();
    found.sort();
    found
}

/// `stackctl graph --format dot`.
pub fn to_dot(dependencies: &BTreeMap<Address, Vec<Address>>) -> String {
    let mut text = String::from("digraph stack {\n  rankdir=LR;\n  node [shape=box];\n");
    for (node, needs) in dependencies {
        text.push_str(&format!("  \"{node}\";\n"));
        for need in needs {
            text.push_str(&format!("  \"{node}\" -> \"{need}\";\n"));
        }
    }
    text.push_str("}\n");
    text
}

/// `stackctl graph --format mermaid`.
pub fn to_mermaid(dependencies: &BTreeMap<Address, Vec<Address>>) -> String {
    let id = |address: &Address| address.to_string().replace(['.', '-', '@'], "_");
    let mut text = String::from("graph LR\n");
    for (node, needs) in dependencies {
        text.push_str(&format!("  {}[\"{node}\"]\n", id(node)));
        for need in needs {
            text.push_str(&format!("  {} --> {}\n", id(node), id(need)));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> Address {
        Address::parse(text).unwrap()
    }

    #[test]
    fn dependencies_come_first_and_ties_sort_by_address() {
        let graph = BTreeMap::from([
            (
                address("service.api"),
                vec![address("network.edge"), address("service.postgres")],
            ),
            (address("service.postgres"), vec![address("volume.pgdata")]),
            (address("network.edge"), vec![]),
            (address("volume.pgdata"), vec![]),
        ]);
        let order: Vec<String> = dependency_order(&graph)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            order,
            [
                "network.edge",
                "volume.pgdata",
                "service.postgres",
                "service.api"
            ]
        );
    }

    #[test]
    fn a_cycle_names_every_member() {
        let graph = BTreeMap::from([
            (address("service.a"), vec![address("service.b")]),
            (address("service.b"), vec![address("service.c")]),
            (address("service.c"), vec![address("service.a")]),
            (address("service.d"), vec![]),
        ]);
        let cycles = dependency_order(&graph).unwrap_err();
        assert_eq!(
            cycles,
            vec![vec![
                address("service.a"),
                address("service.b"),
                address("service.c")
            ]]
        );
    }
}
