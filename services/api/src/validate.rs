//! Request validation: parse, don't validate. A `NewWorkflow` exists only if the request was
//! acceptable, and every refusal says what to change.

use bulwark_secrets::CredentialRef;
use serde::Deserialize;
use serde_json::Value;

/// Workflow types the worker registers.
pub const WORKFLOW_TYPES: [&str; 3] = ["Greeting", "DatabaseQuery", "HttpCall"];
pub const DEFAULT_TASK_QUEUE: &str = "bulwark-default";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    pub workflow_type: String,
    pub workflow_id: Option<String>,
    pub task_queue: Option<String>,
    #[serde(default)]
    pub input: Value,
    #[serde(default)]
    pub credentials: Vec<Value>,
}

#[derive(Debug)]
pub struct NewWorkflow {
    pub workflow_type: String,
    pub workflow_id: String,
    pub task_queue: String,
    pub input: Value,
}

/// Longest workflow id or task queue name (Temporal's default limit is 1000; ours is tighter).
pub const MAX_ID_LEN: usize = 200;
/// The pattern of workflow ids and task queue names, as the OpenAPI document states it.
pub const ID_PATTERN: &str = "^[A-Za-z0-9._:-]{1,200}$";
/// Task queues the API may start workflows on: the gate's `client` role allows `bulwark-*`
/// (config/gate-policy.toml), so anything else would be refused there as a 503 instead of
/// here as a 422 the caller can act on.
pub const TASK_QUEUE_PREFIX: &str = "bulwark-";
pub const TASK_QUEUE_PATTERN: &str = "^bulwark-[A-Za-z0-9._:-]{1,192}$";
/// Largest and default page size of the list.
pub const MAX_LIMIT: u32 = 1000;
pub const DEFAULT_LIMIT: u32 = 100;
/// The pattern of `/result`'s `timeout`: a whole number and one unit.
pub const TIMEOUT_PATTERN: &str = "^[0-9]{1,9}(ms|s|m|h)$";

fn id_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// Credential names and store names as the OpenAPI document states them. Tighter than
/// [`CredentialRef::validate`] (which every store shares): at the public edge a reference is
/// printable ASCII, and a store name can only be a component name (`metadata.name`).
pub const CREDENTIAL_NAME_PATTERN: &str = "^[A-Za-z0-9._/:@+=-]{1,256}$";
pub const STORE_NAME_PATTERN: &str = "^[A-Za-z0-9._-]{1,253}$";

fn edge_reference(r: &CredentialRef) -> Result<(), &'static str> {
    let chars = |s: &str, max: usize, extra: &str| {
        !s.is_empty()
            && s.len() <= max
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    if !chars(&r.name, 256, "._/:@+=-") {
        return Err("name must be 1-256 characters of letters, digits and . _ / : @ + = -");
    }
    if !chars(&r.store_name, 253, "._-") {
        return Err(
            "store_name must be a component name: 1-253 characters of letters, digits and . _ -",
        );
    }
    Ok(())
}

fn reference(v: Value, at: &str) -> Result<CredentialRef, String> {
    let r: CredentialRef = serde_json::from_value(v).map_err(|e| {
        format!("{at} is not a credential reference ({{name, credential_type, store_name?}}): {e}")
    })?;
    r.validate().map_err(|e| format!("{at}: {e}"))?;
    edge_reference(&r).map_err(|e| format!("{at}: {e}"))?;
    Ok(r)
}

/// A workflow id from a URL path, checked against [`ID_PATTERN`]: nothing else can name a
/// workflow this API started, so anything else is a malformed request, not an unknown id.
pub fn path_id(id: &str) -> Result<&str, String> {
    if id_ok(id) {
        Ok(id)
    } else {
        Err("a workflow id is 1-200 characters of letters, digits, '-', '_', '.' or ':'".into())
    }
}

/// `/result`'s `timeout`, such as `500ms`, `30s` or `2m` ([`TIMEOUT_PATTERN`]).
pub fn timeout(t: &str) -> Result<std::time::Duration, String> {
    use std::time::Duration;
    const REFUSED: &str =
        "timeout must be a whole number and a unit (ms, s, m or h), such as 30s or 2m";
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or(REFUSED)?;
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() || digits.len() > 9 {
        return Err(REFUSED.into());
    }
    // At most nine digits: the value fits a u64 however it is scaled below.
    let n: u64 = digits.parse().map_err(|_| REFUSED)?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(REFUSED.into()),
    })
}

/// The list's `limit`: 1 to [`MAX_LIMIT`].
pub fn limit(l: Option<u32>) -> Result<u32, String> {
    match l {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(format!("limit must be between 1 and {MAX_LIMIT}")),
    }
}

impl StartBody {
    pub fn into_new(self, new_id: impl FnOnce() -> String) -> Result<NewWorkflow, String> {
        if !WORKFLOW_TYPES.contains(&self.workflow_type.as_str()) {
            return Err(format!(
                "unknown workflow_type {:?}; known types: {}",
                self.workflow_type,
                WORKFLOW_TYPES.join(", ")
            ));
        }
        let workflow_id =
            match self.workflow_id {
                Some(id) if id_ok(&id) => id,
                Some(_) => return Err(
                    "workflow_id must be 1-200 characters of letters, digits, '-', '_', '.' or ':'"
                        .into(),
                ),
                None => new_id(),
            };
        let task_queue =
            match self.task_queue {
                Some(q) if id_ok(&q) && q.len() > TASK_QUEUE_PREFIX.len() && q.starts_with(TASK_QUEUE_PREFIX) => q,
                Some(_) => return Err(
                    "task_queue must be \"bulwark-\" and 1-192 more characters of letters, digits, '-', '_', '.' or ':' (the task queues bulwark-api may use)"
                        .into(),
                ),
                None => DEFAULT_TASK_QUEUE.to_owned(),
            };
        let mut input = match self.input {
            Value::Null => Value::Object(Default::default()),
            v @ Value::Object(_) => v,
            _ => return Err("input must be a JSON object".into()),
        };
        if let Some(path) = bulwark_workflows::secret_field_path(&input, "input") {
            return Err(format!(
                "{path} looks like a secret value; secrets never go into workflow input. Store it in a secret store and pass a reference in \"credentials\": [{{\"name\": ..., \"credential_type\": ..., \"store_name\": ...}}]"
            ));
        }
        let mut refs = Vec::with_capacity(self.credentials.len());
        for (i, c) in self.credentials.into_iter().enumerate() {
            refs.push(reference(c, &format!("credentials[{i}]"))?);
        }
        // The reference workflows take one credential as `input.credential`.
        if let (Some(obj), false) = (input.as_object_mut(), refs.is_empty()) {
            if refs.len() > 1 {
                return Err("the reference workflows take exactly one credential".into());
            }
            if obj.contains_key("credential") {
                return Err("give the credential either in \"credentials\" or as input.credential, not both".into());
            }
            let r = serde_json::to_value(&refs[0]).map_err(|e| e.to_string())?;
            obj.insert("credential".into(), r);
        }
        if let Some(c) = input.get("credential") {
            reference(c.clone(), "input.credential")?;
        }
        Ok(NewWorkflow {
            workflow_type: self.workflow_type,
            workflow_id,
            task_queue,
            input,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<NewWorkflow, String> {
        serde_json::from_value::<StartBody>(v)
            .map_err(|e| e.to_string())?
            .into_new(|| "generated".into())
    }

    #[test]
    fn accepts_references_and_defaults() {
        let w = parse(json!({"workflow_type": "Greeting", "input": {"name": "Ada"}})).unwrap();
        assert_eq!(
            (w.workflow_id.as_str(), w.task_queue.as_str()),
            ("generated", DEFAULT_TASK_QUEUE)
        );
        let w = parse(
            json!({"workflow_type": "DatabaseQuery", "input": {"query": "inventory_summary"},
            "credentials": [{"name": "demo-db", "credential_type": "basic"}]}),
        )
        .unwrap();
        assert_eq!(w.input["credential"]["store_name"], "default");
    }

    #[test]
    fn query_and_path_values() {
        use std::time::Duration;
        assert_eq!(timeout("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(timeout("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(
            timeout("999999999h"),
            Ok(Duration::from_secs(999_999_999 * 3600))
        );
        for bad in [
            "",
            "s",
            "30",
            "1.5s",
            "-1s",
            "30 s",
            "1000000000s",
            "30sec",
            "1h30m",
        ] {
            assert!(timeout(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(limit(None), Ok(DEFAULT_LIMIT));
        assert_eq!(limit(Some(1000)), Ok(1000));
        assert!(limit(Some(0)).is_err() && limit(Some(1001)).is_err());
        assert!(path_id("wf-1:a.b_c").is_ok());
        for bad in ["", "a b", "a/b", "é", &"x".repeat(201)] {
            assert!(path_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn refuses_secrets_unknown_types_and_bad_ids() {
        for (body, needle) in [
            (json!({"workflow_type": "Nope"}), "unknown workflow_type"),
            (
                json!({"workflow_type": "Greeting", "input": {"db": {"password": "hunter2"}}}),
                "input.db.password looks like a secret",
            ),
            (
                json!({"workflow_type": "Greeting", "input": {"items": [{"API-Key": "x"}]}}),
                "input.items[0].API-Key",
            ),
            (
                json!({"workflow_type": "Greeting", "input": {"db_password": "x"}}),
                "input.db_password",
            ),
            (
                json!({"workflow_type": "Greeting", "workflow_id": "a b"}),
                "workflow_id",
            ),
            (
                json!({"workflow_type": "Greeting", "input": [1]}),
                "input must be a JSON object",
            ),
            (
                json!({"workflow_type": "Greeting", "credentials": [{"name": "x", "credential_type": "basic", "password": "p"}]}),
                "credentials[0]",
            ),
        ] {
            let err = parse(body).unwrap_err();
            assert!(err.contains(needle), "{err}");
            assert!(
                !err.contains("hunter2"),
                "the refusal echoed the secret: {err}"
            );
        }
    }
}
