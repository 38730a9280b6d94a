//! Swarm placement constraints as stack.toml writes them (`node.hostname == web-1`):
//! read by validation (is it one?) and by lowering (does it pin a service to a node?).

/// `node.hostname == web-1` → (`node.hostname`, `==`, `web-1`), when it is one.
pub fn parse_constraint(text: &str) -> Option<(&str, &str, &str)> {
    let (operator, index) = ["==", "!="]
        .iter()
        .find_map(|operator| text.find(operator).map(|index| (*operator, index)))?;
    let left = text[..index].trim();
    let right = text[index + operator.len()..].trim();
    (!left.is_empty() && !right.is_empty() && !right.contains("==") && !right.contains("!="))
        .then_some((left, operator, right))
}

/// The node label stackctl gives every node of the swarm: its name in stack.toml. A
/// droplet's host name is its name only until someone renames the machine; the label is
/// stackctl's own, so a pin to it always means the node stack.toml names.
pub const NODE_NAME_LABEL: &str = "stackctl.node";

/// The constraint that keeps a service's tasks on the node stack.toml calls `node`.
pub fn on_node(node: &str) -> String {
    format!("node.labels.{NODE_NAME_LABEL} == {node}")
}

/// The node a constraint pins tasks to by name: `node.hostname == web-1` (as users write
/// it) or stackctl's own `node.labels.stackctl.node == web-1`.
pub fn named_node(constraint: &str) -> Option<&str> {
    match parse_constraint(constraint)? {
        ("node.hostname", "==", node) => Some(node),
        (attribute, "==", node)
            if attribute.strip_prefix("node.labels.") == Some(NODE_NAME_LABEL) =>
        {
            Some(node)
        }
        _ => None,
    }
}

/// True when the constraints keep every task on one named node.
pub fn pins_to_one_node(constraints: &[String]) -> bool {
    constraints.iter().any(|constraint| {
        named_node(constraint).is_some()
            || matches!(parse_constraint(constraint), Some(("node.id", "==", _)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraints_are_split_at_their_operator() {
        assert_eq!(
            parse_constraint("node.hostname == web-1"),
            Some(("node.hostname", "==", "web-1"))
        );
        assert_eq!(
            parse_constraint("node.labels.zone!=b"),
            Some(("node.labels.zone", "!=", "b"))
        );
        assert_eq!(parse_constraint("node.role manager"), None);
        assert_eq!(parse_constraint("== web-1"), None);
        assert_eq!(parse_constraint("a == b == c"), None);
    }

    #[test]
    fn only_an_equality_on_hostname_or_id_pins_a_service() {
        assert!(pins_to_one_node(&["node.hostname == web-1".into()]));
        assert!(pins_to_one_node(&["node.id==abc".into()]));
        assert!(!pins_to_one_node(&["node.hostname != web-1".into()]));
        assert!(!pins_to_one_node(&["node.role == manager".into()]));
        assert!(pins_to_one_node(&[on_node("web-1")]));
    }

    #[test]
    fn a_node_is_named_by_its_host_name_or_by_stackctls_label() {
        assert_eq!(named_node("node.hostname == web-1"), Some("web-1"));
        assert_eq!(on_node("web-2"), "node.labels.stackctl.node == web-2");
        assert_eq!(named_node(&on_node("web-2")), Some("web-2"));
        assert_eq!(named_node("node.labels.zone == a"), None);
        assert_eq!(named_node("node.hostname != web-1"), None);
    }
}
