//! The policy file: parsing, validation (every error names file and line) and the decision.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::catalog::{Catalog, Facts, Method, Service};
use crate::glob::{Glob, ScopeGlob};

/// Why a policy file was refused. Every variant names the file and the line (and column).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {source_name}: {error}")]
    Read {
        source_name: String,
        #[source]
        error: std::io::Error,
    },
    /// TOML syntax or shape (unknown key, wrong type, duplicate table), as the toml crate says.
    #[error("{source_name}:{line}:{column}: {message}")]
    Syntax {
        source_name: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// Well-formed TOML that is not a valid policy (unknown method, bad glob, ...).
    #[error("{source_name}:{line}:{column}: {message}")]
    Invalid {
        source_name: String,
        line: usize,
        column: usize,
        message: String,
    },
}

impl PolicyError {
    /// The 1-based line the error points at (None for a read error).
    pub fn line(&self) -> Option<usize> {
        match self {
            PolicyError::Read { .. } => None,
            PolicyError::Syntax { line, .. } | PolicyError::Invalid { line, .. } => Some(*line),
        }
    }
}

/// Who is calling: established by the gate from the verified client certificate and the token.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The last path segment of the URI SAN after `/client/` (e.g. `worker`), or `gate`.
    pub identity: &'a str,
    /// The token's `scope` claim split on spaces.
    pub scopes: &'a [String],
}

/// The outcome of [`Policy::decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The role chosen for the caller, if any matched.
    pub role: Option<String>,
    /// Human text naming the role and the policy line (for the refusal message and the audit).
    pub rule: String,
}

/// A parsed, validated, immutable policy.
#[derive(Debug, Clone)]
pub struct Policy {
    source: String,
    roles: Vec<Role>,
}

#[derive(Debug, Clone)]
struct Role {
    name: String,
    line: usize,
    /// `role "x" (file line n)`, the allowed rule text, built once.
    allowed_rule: String,
    identities: Vec<String>,
    scopes: Vec<ScopeGlob>,
    namespaces: Option<Constraint>,
    task_queues: Option<Constraint>,
    workflow_types: Option<Constraint>,
    /// Indexed like [`Catalog::all`].
    methods: Vec<bool>,
}

#[derive(Debug, Clone)]
struct Constraint {
    line: usize,
    globs: Vec<Glob>,
}

impl Constraint {
    fn allows(&self, value: &str) -> bool {
        self.globs.iter().any(|g| g.matches(value))
    }
}

type Strings = Spanned<Vec<Spanned<String>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDef {
    version: Spanned<i64>,
    #[serde(default)]
    roles: Option<BTreeMap<Spanned<String>, Spanned<RoleDef>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleDef {
    identities: Option<Strings>,
    scopes: Option<Strings>,
    namespaces: Option<Strings>,
    task_queues: Option<Strings>,
    workflow_types: Option<Strings>,
    methods: Option<Strings>,
}

/// Maps byte offsets of the policy text to lines and columns.
struct Source<'a> {
    name: &'a str,
    text: &'a str,
}

impl Source<'_> {
    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    fn line(&self, span: Range<usize>) -> usize {
        self.position(span.start).0
    }

    fn invalid(&self, span: Range<usize>, message: impl Into<String>) -> PolicyError {
        let (line, column) = self.position(span.start);
        PolicyError::Invalid {
            source_name: self.name.to_owned(),
            line,
            column,
            message: message.into(),
        }
    }

    /// The short file name used in rule texts (`gate-policy.toml`, not a full path).
    fn short_name(&self) -> &str {
        Path::new(self.name)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(self.name)
    }
}

impl Policy {
    /// Parse and validate a policy; `source` names the file in every message.
    pub fn parse(text: &str, source: &str) -> Result<Policy, PolicyError> {
        let src = Source { name: source, text };
        let file: FileDef = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| src.position(s.start));
            PolicyError::Syntax {
                source_name: source.to_owned(),
                line,
                column,
                message: e.message().trim_end().to_owned(),
            }
        })?;
        if *file.version.get_ref() != 1 {
            return Err(src.invalid(
                file.version.span(),
                format!(
                    "unsupported policy version {} (this gate reads version 1)",
                    file.version.get_ref()
                ),
            ));
        }
        let Some(defs) = file.roles.filter(|r| !r.is_empty()) else {
            return Err(src.invalid(
                file.version.span(),
                "the policy defines no roles ([roles.<name>] tables): every call would be refused",
            ));
        };
        // Role choice is "first in file order": BTreeMap orders by name, the spans by position.
        let mut defs: Vec<_> = defs.into_iter().collect();
        defs.sort_by_key(|(name, _)| name.span().start);
        let roles = defs
            .into_iter()
            .map(|(name, def)| Role::build(&src, name, def.into_inner()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Policy {
            source: src.short_name().to_owned(),
            roles,
        })
    }

    /// Read and parse a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| PolicyError::Read {
            source_name: name.clone(),
            error,
        })?;
        Policy::parse(&text, &name)
    }

    /// The role names in file order.
    pub fn roles(&self) -> impl Iterator<Item = &str> {
        self.roles.iter().map(|r| r.name.as_str())
    }

    /// Deny by default: allowed only if the caller's role lists the method and every fact the
    /// call names (namespace, task queue, workflow type) is inside the role's lists.
    pub fn decide(&self, caller: &Caller<'_>, method: &Method, facts: &Facts) -> Decision {
        if method.service == Service::Health {
            // The gate answers health checks before the policy for every authenticated caller.
            return Decision {
                allowed: true,
                role: None,
                rule: "health checks are open to every authenticated caller".to_owned(),
            };
        }
        let Some(role) = self.roles.iter().find(|r| r.admits(caller)) else {
            return Decision {
                allowed: false,
                role: None,
                rule: format!(
                    "no role in {} matches identity {:?} with scopes {:?}",
                    self.source, caller.identity, caller.scopes
                ),
            };
        };
        let deny = |rule: String| Decision {
            allowed: false,
            role: Some(role.name.clone()),
            rule,
        };
        if !role.methods.get(method.index()).copied().unwrap_or(false) {
            return deny(format!(
                "{} is not allowed for role {:?} ({} line {})",
                method.short(),
                role.name,
                self.source,
                role.line
            ));
        }
        let checks = [
            (
                "namespace",
                "namespaces",
                &role.namespaces,
                &facts.namespace,
            ),
            (
                "task queue",
                "task queues",
                &role.task_queues,
                &facts.task_queue,
            ),
            (
                "workflow type",
                "workflow types",
                &role.workflow_types,
                &facts.workflow_type,
            ),
        ];
        for (what, list, constraint, value) in checks {
            match (constraint, value) {
                (Some(c), Some(v)) if !c.allows(v) => {
                    return deny(format!(
                        "{what} {v:?} is outside role {:?}'s {list} ({} line {})",
                        role.name, self.source, c.line
                    ));
                }
                // Fail closed: a message that has the field but leaves it empty cannot be
                // shown to be inside the list (Temporal may fill in a default).
                (Some(c), None)
                    if (what == "task queue" && method.names_task_queue())
                        || (what == "workflow type" && method.names_workflow_type()) =>
                {
                    return deny(format!(
                        "the request names no {what}, and role {:?} is limited to {list} ({} line {})",
                        role.name, self.source, c.line
                    ));
                }
                _ => {}
            }
        }
        Decision {
            allowed: true,
            role: Some(role.name.clone()),
            rule: role.allowed_rule.clone(),
        }
    }
}

impl Role {
    fn admits(&self, caller: &Caller<'_>) -> bool {
        self.identities.iter().any(|i| i == caller.identity)
            && caller
                .scopes
                .iter()
                .any(|s| self.scopes.iter().any(|g| g.matches(s)))
    }

    fn build(src: &Source<'_>, name: Spanned<String>, def: RoleDef) -> Result<Role, PolicyError> {
        let role_span = name.span();
        let role = name.into_inner();
        let required = |field: Option<Strings>, key: &str| -> Result<Strings, PolicyError> {
            let value = field.ok_or_else(|| {
                src.invalid(role_span.clone(), format!("role {role:?} has no `{key}`"))
            })?;
            if value.get_ref().is_empty() {
                return Err(src.invalid(
                    value.span(),
                    format!("role {role:?} has empty `{key}`: it could never apply"),
                ));
            }
            Ok(value)
        };

        let identities: Vec<String> = required(def.identities, "identities")?
            .into_inner()
            .into_iter()
            .map(|i| {
                if i.get_ref().is_empty() || i.get_ref().contains('/') {
                    Err(src.invalid(i.span(), format!("bad identity {:?}", i.get_ref())))
                } else {
                    Ok(i.into_inner())
                }
            })
            .collect::<Result<_, _>>()?;
        let scopes = required(def.scopes, "scopes")?
            .into_inner()
            .into_iter()
            .map(|s| ScopeGlob::parse(s.get_ref()).map_err(|e| src.invalid(s.span(), e)))
            .collect::<Result<_, _>>()?;
        let constraint = |field: Option<Strings>, key: &str| -> Result<_, PolicyError> {
            let Some(field) = field else { return Ok(None) };
            if field.get_ref().is_empty() {
                return Err(src.invalid(
                    field.span(),
                    format!("role {role:?} has empty `{key}` (omit it to allow any)"),
                ));
            }
            let line = src.line(field.span());
            let globs = field
                .into_inner()
                .into_iter()
                .map(|g| Glob::parse(g.get_ref()).map_err(|e| src.invalid(g.span(), e)))
                .collect::<Result<_, _>>()?;
            Ok(Some(Constraint { line, globs }))
        };
        let namespaces = constraint(def.namespaces, "namespaces")?;
        let task_queues = constraint(def.task_queues, "task_queues")?;
        let workflow_types = constraint(def.workflow_types, "workflow_types")?;

        let all = Catalog::all();
        let mut methods = vec![false; all.len()];
        for entry in required(def.methods, "methods")?.into_inner() {
            let text = entry.get_ref().as_str();
            if text == "*" {
                methods.iter_mut().for_each(|m| *m = true);
                continue;
            }
            let found = resolve(text).map_err(|e| src.invalid(entry.span(), e))?;
            methods[found.index()] = true;
        }

        let line = src.line(role_span);
        Ok(Role {
            allowed_rule: format!("role {role:?} ({} line {line})", src.short_name()),
            name: role,
            line,
            identities,
            scopes,
            namespaces,
            task_queues,
            workflow_types,
            methods,
        })
    }
}

/// A policy method name: `Name` (must be unique across services) or `Service/Name`.
fn resolve(text: &str) -> Result<&'static Method, String> {
    let all = Catalog::all();
    if let Some((service, name)) = text.split_once('/') {
        return all
            .iter()
            .find(|m| m.service.short() == service && m.name == name)
            .ok_or_else(|| format!("unknown method {text:?}"));
    }
    let mut found = all.iter().filter(|m| m.name == text);
    match (found.next(), found.next()) {
        (Some(m), None) => Ok(m),
        (Some(a), Some(b)) => Err(format!(
            "method name {text:?} is ambiguous: write {:?} or {:?}",
            a.short(),
            b.short()
        )),
        (None, _) => {
            let hint = all
                .iter()
                .find(|m| m.name.eq_ignore_ascii_case(text))
                .map(|m| format!(" (did you mean {:?}?)", m.name))
                .unwrap_or_default();
            Err(format!("unknown method {text:?}{hint}"))
        }
    }
}
