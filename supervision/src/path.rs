//! Actor paths: `/pipelines/fraud/stages/flag/p3`, the address of every supervised actor.

use std::fmt;
use std::sync::Arc;

use crate::error::SupervisionError;

/// The absolute path of an actor in the supervision tree. Cheap to clone (one shared string).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActorPath(Arc<str>);

impl ActorPath {
    /// The root supervisor's path, `/`.
    pub fn root() -> Self {
        ActorPath(Arc::from("/"))
    }

    /// Parses an absolute path such as `/pipelines/p/sources/s`.
    pub fn parse(text: &str) -> Result<Self, SupervisionError> {
        if text == "/" {
            return Ok(Self::root());
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err(SupervisionError::InvalidPath {
                path: text.to_owned(),
                why: "an actor path starts with '/'",
            });
        };
        for segment in rest.split('/') {
            validate_name(segment).map_err(|why| SupervisionError::InvalidPath {
                path: text.to_owned(),
                why,
            })?;
        }
        Ok(ActorPath(Arc::from(text)))
    }

    /// The path of a child called `name` under this path.
    pub(crate) fn child(&self, name: &str) -> Self {
        let text = if self.is_root() {
            format!("/{name}")
        } else {
            format!("{}/{name}", self.0)
        };
        ActorPath(Arc::from(text))
    }

    /// True for `/`.
    pub fn is_root(&self) -> bool {
        &*self.0 == "/"
    }

    /// The last segment (`p3` in `/pipelines/p/stages/s/p3`); empty for the root.
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    /// True when `self` lies strictly below `ancestor`.
    pub fn is_descendant_of(&self, ancestor: &ActorPath) -> bool {
        if ancestor.is_root() {
            return !self.is_root();
        }
        self.0.len() > ancestor.0.len()
            && self.0.starts_with(&*ancestor.0)
            && self.0.as_bytes()[ancestor.0.len()] == b'/'
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks one path segment (a child name): non-empty, no `/`, printable ASCII without spaces.
pub(crate) fn validate_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("an actor name must not be empty");
    }
    if name.len() > 200 {
        return Err("an actor name must be at most 200 bytes");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'"' && b != b'\\')
    {
        return Err("an actor name holds printable ASCII only, without '/', '\"', '\\' or spaces");
    }
    Ok(())
}

impl fmt::Display for ActorPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ActorPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_join_with_one_slash() {
        let root = ActorPath::root();
        let pipelines = root.child("pipelines");
        assert_eq!(pipelines.as_str(), "/pipelines");
        let p3 = pipelines.child("p").child("p3");
        assert_eq!(p3.as_str(), "/pipelines/p/p3");
        assert_eq!(p3.name(), "p3");
        assert!(p3.is_descendant_of(&pipelines));
        assert!(p3.is_descendant_of(&root));
        assert!(!pipelines.is_descendant_of(&p3));
        assert!(!ActorPath::parse("/pipelinesX/a")
            .expect("valid")
            .is_descendant_of(&pipelines));
    }

    #[test]
    fn parse_rejects_malformed_paths() {
        assert!(ActorPath::parse("pipelines").is_err());
        assert!(ActorPath::parse("/a//b").is_err());
        assert!(ActorPath::parse("/a/").is_err());
        assert!(ActorPath::parse("/a b").is_err());
        assert_eq!(ActorPath::parse("/a/b").expect("valid").as_str(), "/a/b");
        assert!(ActorPath::parse("/").expect("root").is_root());
    }
}
