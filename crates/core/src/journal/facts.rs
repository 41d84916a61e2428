//! Typed names for the facts a run records. A step records a fact before and after each side
//! effect and reads it back on resume; the report reads the same facts to tell what happened.
//! Both sides name a fact through one [`Fact`] constant, declared next to the code that writes
//! it, so a fact cannot be written under one spelling and read under another, nor read as a
//! different type than it was written as.

use std::borrow::Cow;
use std::marker::PhantomData;

/// The name of a fact holding a `T`.
pub struct Fact<T> {
    name: Cow<'static, str>,
    value: PhantomData<fn() -> T>,
}

impl<T> Fact<T> {
    pub const fn new(name: &'static str) -> Self {
        Fact {
            name: Cow::Borrowed(name),
            value: PhantomData,
        }
    }

    /// The member of a family of facts: one per node group or add-on (`update:general`), so
    /// that work running in parallel never writes the same fact.
    pub fn of(&self, member: &str) -> Fact<T> {
        Fact {
            name: Cow::Owned(format!("{}:{member}", self.name)),
            value: PhantomData,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<T> std::fmt::Debug for Fact<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fact({})", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_of_a_family_are_named_apart() {
        const UPDATE: Fact<String> = Fact::new("update");
        assert_eq!(UPDATE.name(), "update");
        assert_eq!(UPDATE.of("general").name(), "update:general");
        assert_ne!(UPDATE.of("a").name(), UPDATE.of("b").name());
    }
}
