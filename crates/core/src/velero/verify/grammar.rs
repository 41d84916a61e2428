//! What both walks of an item share: the fields they read, where a walk is between tokens, and
//! how a container is entered and left (`metadata`'s fields are tracked only inside it).

/// The fields the head is made of; everything else is only checked for form.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    ApiVersion,
    Kind,
    Metadata,
    Name,
    Namespace,
    Other,
}

impl Field {
    pub(super) fn label(self) -> &'static str {
        match self {
            Field::ApiVersion => "apiVersion",
            Field::Kind => "kind",
            Field::Metadata => "metadata",
            Field::Name => "metadata.name",
            Field::Namespace => "metadata.namespace",
            Field::Other => "",
        }
    }

    pub(super) fn bit(self) -> u8 {
        match self {
            Field::ApiVersion => 1,
            Field::Kind => 2,
            Field::Metadata => 4,
            Field::Name => 8,
            Field::Namespace => 16,
            Field::Other => 0,
        }
    }
}

/// Where the walk is between tokens.
pub(super) enum Next {
    /// Just after `{`: a key or `}`.
    ObjectStart,
    /// After `,` in an object: a key.
    Key,
    /// A value, for the given field.
    Value(Field),
    /// After a value: `,`, the container's close, or the end of the item.
    AfterValue,
}

/// Pushes a container, `{` or `[`, opened as the value of `field`: entering `metadata` if that
/// is the field.
pub(super) fn open(stack: &mut Vec<bool>, in_metadata: &mut bool, field: Field, bracket: u8) {
    stack.push(bracket == b'{');
    if field == Field::Metadata {
        *in_metadata = true;
    }
}

/// Pops a container; leaving the object at depth 2 leaves `metadata` if that is where it was.
pub(super) fn close(stack: &mut Vec<bool>, in_metadata: &mut bool) {
    if stack.len() == 2 {
        *in_metadata = false;
    }
    stack.pop();
}
