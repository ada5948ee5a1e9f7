//! OAuth scopes and the Temporal permissions they grant.
//!
//! Scope strings: `temporal:<namespace>:read|write|admin`, `temporal:system:admin`, and the
//! bulwark-api scopes `workflows:start`, `workflows:read`, `workflows:cancel`.

use std::{collections::BTreeSet, fmt, str::FromStr};

use bulwark_pki::names::Namespace;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Temporal { namespace: Namespace, role: Role },
    TemporalSystemAdmin,
    Workflows(WorkflowAction),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Read,
    Write,
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WorkflowAction {
    Start,
    Read,
    Cancel,
}

/// A scope string that is not in the vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownScope(s.to_owned());
        match s {
            "temporal:system:admin" => return Ok(Scope::TemporalSystemAdmin),
            "workflows:start" => return Ok(Scope::Workflows(WorkflowAction::Start)),
            "workflows:read" => return Ok(Scope::Workflows(WorkflowAction::Read)),
            "workflows:cancel" => return Ok(Scope::Workflows(WorkflowAction::Cancel)),
            _ => {}
        }
        let rest = s.strip_prefix("temporal:").ok_or_else(unknown)?;
        let (ns, role) = rest.rsplit_once(':').ok_or_else(unknown)?;
        let role = match role {
            "read" => Role::Read,
            "write" => Role::Write,
            "admin" => Role::Admin,
            _ => return Err(unknown()),
        };
        let namespace = ns.parse().map_err(|_| unknown())?;
        Ok(Scope::Temporal { namespace, role })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::TemporalSystemAdmin => f.write_str("temporal:system:admin"),
            Scope::Temporal { namespace, role } => {
                let role = match role {
                    Role::Read => "read",
                    Role::Write => "write",
                    Role::Admin => "admin",
                };
                write!(f, "temporal:{namespace}:{role}")
            }
            Scope::Workflows(a) => f.write_str(match a {
                WorkflowAction::Start => "workflows:start",
                WorkflowAction::Read => "workflows:read",
                WorkflowAction::Cancel => "workflows:cancel",
            }),
        }
    }
}

impl Scope {
    /// The Temporal permission (`<namespace>:<role>`) this scope grants, if any.
    pub fn temporal_permission(&self) -> Option<String> {
        match self {
            Scope::TemporalSystemAdmin => Some("temporal-system:admin".into()),
            Scope::Temporal { namespace, role } => Some(format!(
                "{namespace}:{}",
                match role {
                    Role::Read => "read",
                    Role::Write => "write",
                    Role::Admin => "admin",
                }
            )),
            Scope::Workflows(_) => None,
        }
    }
}

/// A set of scopes, written space-separated (RFC 6749 3.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(pub BTreeSet<Scope>);

impl FromStr for ScopeSet {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(' ')
            .filter(|p| !p.is_empty())
            .map(str::parse)
            .collect::<Result<BTreeSet<_>, _>>()
            .map(ScopeSet)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(" "))
    }
}

impl ScopeSet {
    pub fn contains(&self, s: &Scope) -> bool {
        self.0.contains(s)
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn permissions(&self) -> Vec<String> {
        self.0
            .iter()
            .filter_map(Scope::temporal_permission)
            .collect()
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_map() {
        let s: ScopeSet = "temporal:default:write workflows:start temporal:system:admin"
            .parse()
            .unwrap();
        assert_eq!(s.permissions(), ["default:write", "temporal-system:admin"]);
        assert_eq!(
            s.to_string(),
            "temporal:default:write temporal:system:admin workflows:start"
        );
        for bad in [
            "temporal:default:root",
            "temporal::read",
            "workflows:delete",
            "temporal:a:b:write",
            "admin",
        ] {
            assert!(bad.parse::<Scope>().is_err(), "{bad}");
        }
    }
}
