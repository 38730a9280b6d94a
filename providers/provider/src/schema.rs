use serde::Serialize;

/// What the planner must know about one kind of resource.
#[derive(Clone, Debug, Serialize)]
pub struct KindSchema {
    pub kind: &'static str,
    pub provider: &'static str,
    pub attributes: Vec<AttributeSchema>,
}

/// How the planner treats one attribute of a kind.
#[derive(Clone, Debug, Serialize)]
pub struct AttributeSchema {
    pub name: &'static str,
    /// A change cannot be made in place: the resource is replaced.
    pub force_replace: bool,
    /// Set by the provider (an IP, an id): never compared against the config.
    pub computed: bool,
    /// Always shown as `(sensitive)`, even when its value is not a [`crate::Secret`].
    pub sensitive: bool,
    /// Carried to the provider, but a change to it alone plans nothing: it takes effect
    /// the next time the resource is applied for another reason (a release task's
    /// timeout or networks, which are no reason to run the task again).
    pub inert: bool,
    /// Leaving the attribute unset means "what the provider builds by default" (the
    /// image's own command, no user, no memory limit), and the provider reads it back
    /// only when the live value differs from that default. So a live value of an
    /// attribute the resource leaves unset was added by hand: it is drift, and apply
    /// puts the default back.
    pub unset_means_default: bool,
    /// Computed, and read live from a source the target follows (an image's registry
    /// digest): when live differs from recorded, the resource is updated to follow it —
    /// never "repaired" back, which drift would mean.
    pub upstream: bool,
    /// Computed, and found anew by every apply (a swarm service's backend servers: the
    /// addresses of the tasks running then): drift of it is not put back as recorded, so
    /// the plan shows its new value as known after apply.
    pub found_by_apply: bool,
}

impl AttributeSchema {
    pub const fn plain(name: &'static str) -> Self {
        AttributeSchema {
            name,
            force_replace: false,
            computed: false,
            sensitive: false,
            inert: false,
            unset_means_default: false,
            upstream: false,
            found_by_apply: false,
        }
    }

    /// The same attribute, marked [`AttributeSchema::unset_means_default`].
    pub const fn unset_means_default(self) -> Self {
        AttributeSchema {
            unset_means_default: true,
            ..self
        }
    }

    pub const fn replaces(name: &'static str) -> Self {
        AttributeSchema {
            force_replace: true,
            ..AttributeSchema::plain(name)
        }
    }

    pub const fn computed(name: &'static str) -> Self {
        AttributeSchema {
            computed: true,
            ..AttributeSchema::plain(name)
        }
    }

    pub const fn sensitive(name: &'static str) -> Self {
        AttributeSchema {
            sensitive: true,
            ..AttributeSchema::plain(name)
        }
    }

    pub const fn upstream(name: &'static str) -> Self {
        AttributeSchema {
            computed: true,
            upstream: true,
            ..AttributeSchema::plain(name)
        }
    }

    pub const fn found_by_apply(name: &'static str) -> Self {
        AttributeSchema {
            computed: true,
            found_by_apply: true,
            ..AttributeSchema::plain(name)
        }
    }

    pub const fn inert(name: &'static str) -> Self {
        AttributeSchema {
            inert: true,
            ..AttributeSchema::plain(name)
        }
    }
}

impl KindSchema {
    pub fn attribute(&self, name: &str) -> Option<&AttributeSchema> {
        self.attributes
            .iter()
            .find(|attribute| attribute.name == name)
    }

    /// True when changing `name` forces a replacement. Unlisted attributes update in place.
    pub fn forces_replace(&self, name: &str) -> bool {
        self.attribute(name)
            .is_some_and(|attribute| attribute.force_replace)
    }

    pub fn is_computed(&self, name: &str) -> bool {
        self.attribute(name)
            .is_some_and(|attribute| attribute.computed)
    }

    pub fn is_upstream(&self, name: &str) -> bool {
        self.attribute(name)
            .is_some_and(|attribute| attribute.upstream)
    }

    pub fn is_found_by_apply(&self, name: &str) -> bool {
        self.attribute(name)
            .is_some_and(|attribute| attribute.found_by_apply)
    }

    pub fn is_inert(&self, name: &str) -> bool {
        self.attribute(name)
            .is_some_and(|attribute| attribute.inert)
    }

    pub fn unset_means_default(&self, name: &str) -> bool {
        self.attribute(name)
            .is_some_and(|attribute| attribute.unset_means_default)
    }

    pub fn is_sensitive(&self, name: &str) -> bool {
        self.attribute(name)
            .is_some_and(|attribute| attribute.sensitive)
    }
}
