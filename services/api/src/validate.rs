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

fn id_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
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
                Some(q) if id_ok(&q) => q,
                Some(_) => return Err(
                    "task_queue must be 1-200 characters of letters, digits, '-', '_', '.' or ':'"
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
            let r: CredentialRef = serde_json::from_value(c).map_err(|e| {
                format!("credentials[{i}] is not a credential reference ({{name, credential_type, store_name?}}): {e}")
            })?;
            r.validate().map_err(|e| format!("credentials[{i}]: {e}"))?;
            refs.push(r);
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
            let r: CredentialRef = serde_json::from_value(c.clone())
                .map_err(|e| format!("input.credential is not a credential reference: {e}"))?;
            r.validate().map_err(|e| format!("input.credential: {e}"))?;
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
