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

/// True when the constraints keep every task on one named node.
pub fn pins_to_one_node(constraints: &[String]) -> bool {
    constraints.iter().any(|constraint| {
        matches!(
            parse_constraint(constraint),
            Some(("node.hostname" | "node.id", "==", _))
        )
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
    }
}
