//! Unit tests: the catalog, decoding of real prost-encoded requests, the shipped policy and the
//! validation errors.

use prost::Message as _;
use temporalio_common::protos::temporal::api::common::v1::{
    Payload, Payloads, WorkflowExecution, WorkflowType,
};
use temporalio_common::protos::temporal::api::enums::v1::TaskQueueKind;
use temporalio_common::protos::temporal::api::operatorservice::v1 as op;
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflowservice::v1 as wf;

use crate::*;

const SHIPPED: &str = include_str!("../../../config/gate-policy.toml");
const WF: &str = "/temporal.api.workflowservice.v1.WorkflowService/";

fn method(name: &str) -> &'static Method {
    let path = if name.contains('/') {
        format!("/temporal.api.operatorservice.v1.{name}")
    } else {
        format!("{WF}{name}")
    };
    Catalog::lookup(&path).unwrap_or_else(|| panic!("{path} not in the catalog"))
}

fn shipped() -> Policy {
    Policy::parse(SHIPPED, "config/gate-policy.toml").unwrap()
}

fn facts(ns: &str, tq: Option<&str>, wt: Option<&str>) -> Facts {
    Facts {
        namespace: Some(ns.into()),
        task_queue: tq.map(Into::into),
        workflow_type: wt.map(Into::into),
        workflow_id: None,
    }
}

fn scopes(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

fn decide(p: &Policy, identity: &str, scope: &[&str], name: &str, f: &Facts) -> Decision {
    let scopes = scopes(scope);
    p.decide(
        &Caller {
            identity,
            scopes: &scopes,
        },
        method(name),
        f,
    )
}

fn start_request(task_queue: &str, payload_bytes: usize) -> wf::StartWorkflowExecutionRequest {
    wf::StartWorkflowExecutionRequest {
        namespace: "bulwark".into(),
        workflow_id: "order-42".into(),
        workflow_type: Some(WorkflowType {
            name: "ProcessOrder".into(),
        }),
        task_queue: Some(TaskQueue {
            name: task_queue.into(),
            kind: TaskQueueKind::Normal as i32,
            normal_name: String::new(),
        }),
        input: Some(Payloads {
            payloads: vec![Payload {
                metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
                data: vec![b'x'; payload_bytes],
                ..Default::default()
            }],
        }),
        identity: "api@host".into(),
        request_id: "8d3c8a5e-5b43-4c5e-9f43-1f6f0b9d1d7a".into(),
        ..Default::default()
    }
}

// ---------------------------------------------------------------- catalog

#[test]
fn catalog_has_every_service_method_and_health() {
    let all = Catalog::all();
    let count = |s: Service| all.iter().filter(|m| m.service == s).count();
    // The SDK's protos (temporalio-protos 0.10.2) have 123 WorkflowService and 12
    // OperatorService rpcs; fewer means the generator lost some.
    assert!(
        count(Service::Workflow) >= 123,
        "{}",
        count(Service::Workflow)
    );
    assert!(
        count(Service::Operator) >= 12,
        "{}",
        count(Service::Operator)
    );
    assert_eq!(count(Service::Health), 1);
    for m in all {
        assert_eq!(Catalog::lookup(m.path()).map(|x| x.path()), Some(m.path()));
        assert_eq!(m.path(), format!("/{}/{}", m.service.full(), m.name));
        assert_eq!(Catalog::all()[m.index()].path(), m.path());
        if m.service != Service::Health {
            assert_eq!(
                m.request_type().rsplit('.').next(),
                Some(format!("{}Request", m.name).as_str())
            );
        }
    }
    assert_eq!(
        method("StartWorkflowExecution").short(),
        "WorkflowService/StartWorkflowExecution"
    );
    assert_eq!(
        method("OperatorService/AddSearchAttributes").short(),
        "OperatorService/AddSearchAttributes"
    );
    assert!(Catalog::lookup("/grpc.health.v1.Health/Check").is_some());
    assert!(Catalog::lookup("/grpc.health.v1.Health/Watch").is_none());
    assert!(Catalog::lookup(&format!("{WF}NoSuchMethod")).is_none());
    assert!(Catalog::lookup("StartWorkflowExecution").is_none());
}

#[test]
fn mutating_methods() {
    for name in [
        "StartWorkflowExecution",
        "SignalWithStartWorkflowExecution",
        "SignalWorkflowExecution",
        "TerminateWorkflowExecution",
        "RequestCancelWorkflowExecution",
        "ResetWorkflowExecution",
        "DeleteWorkflowExecution",
        "RegisterNamespace",
        "UpdateNamespace",
        "DeprecateNamespace",
        "CreateSchedule",
        "UpdateSchedule",
        "PatchSchedule",
        "DeleteSchedule",
        "UpdateWorkflowExecution",
        "ExecuteMultiOperation",
        "StartBatchOperation",
        "StopBatchOperation",
        "OperatorService/AddSearchAttributes",
        "OperatorService/RemoveSearchAttributes",
        "OperatorService/DeleteNamespace",
        "OperatorService/CreateNexusEndpoint",
        "OperatorService/UpdateNexusEndpoint",
    ] {
        assert!(method(name).mutating, "{name} should be mutating");
    }
    for name in [
        "PollWorkflowTaskQueue",
        "RespondWorkflowTaskCompleted",
        "RecordActivityTaskHeartbeat",
        "DescribeWorkflowExecution",
        "DescribeSchedule",
        "ListSchedules",
        "ListScheduleMatchingTimes",
        "CountSchedules",
        "QueryWorkflow",
        "GetSystemInfo",
        "ResetStickyTaskQueue",
        "OperatorService/ListSearchAttributes",
        "OperatorService/ListClusters",
    ] {
        assert!(!method(name).mutating, "{name} should not be mutating");
    }
}

// ---------------------------------------------------------------- decoding

#[test]
fn decodes_start_workflow_execution() {
    let bytes = start_request("bulwark-orders", 900).encode_to_vec();
    let f = method("StartWorkflowExecution").facts(&bytes).unwrap();
    assert_eq!(
        f,
        Facts {
            namespace: Some("bulwark".into()),
            task_queue: Some("bulwark-orders".into()),
            workflow_type: Some("ProcessOrder".into()),
            workflow_id: Some("order-42".into()),
        }
    );
}

#[test]
fn decodes_signal_with_start_and_signal_and_query() {
    let sws = wf::SignalWithStartWorkflowExecutionRequest {
        namespace: "ns".into(),
        workflow_id: "wid".into(),
        workflow_type: Some(WorkflowType { name: "T".into() }),
        task_queue: Some(TaskQueue {
            name: "bulwark-q".into(),
            ..Default::default()
        }),
        signal_name: "go".into(),
        ..Default::default()
    };
    let f = method("SignalWithStartWorkflowExecution")
        .facts(&sws.encode_to_vec())
        .unwrap();
    assert_eq!(f.task_queue.as_deref(), Some("bulwark-q"));
    assert_eq!(f.workflow_id.as_deref(), Some("wid"));
    assert_eq!(f.workflow_type.as_deref(), Some("T"));

    let signal = wf::SignalWorkflowExecutionRequest {
        namespace: "ns".into(),
        workflow_execution: Some(WorkflowExecution {
            workflow_id: "wid-2".into(),
            run_id: "run".into(),
        }),
        signal_name: "go".into(),
        ..Default::default()
    };
    let f = method("SignalWorkflowExecution")
        .facts(&signal.encode_to_vec())
        .unwrap();
    assert_eq!(f.namespace.as_deref(), Some("ns"));
    assert_eq!(f.workflow_id.as_deref(), Some("wid-2"));
    assert_eq!(f.task_queue, None);

    let query = wf::QueryWorkflowRequest {
        namespace: "ns".into(),
        execution: Some(WorkflowExecution {
            workflow_id: "wid-3".into(),
            run_id: String::new(),
        }),
        ..Default::default()
    };
    let f = method("QueryWorkflow")
        .facts(&query.encode_to_vec())
        .unwrap();
    assert_eq!(f.workflow_id.as_deref(), Some("wid-3"));

    let terminate = wf::TerminateWorkflowExecutionRequest {
        namespace: "ns".into(),
        workflow_execution: Some(WorkflowExecution {
            workflow_id: "wid-4".into(),
            run_id: String::new(),
        }),
        ..Default::default()
    };
    let f = method("TerminateWorkflowExecution")
        .facts(&terminate.encode_to_vec())
        .unwrap();
    assert_eq!(f.workflow_id.as_deref(), Some("wid-4"));
}

#[test]
fn decodes_polls_sticky_queue_as_its_normal_name() {
    let poll = |kind: TaskQueueKind, name: &str, normal: &str| {
        wf::PollWorkflowTaskQueueRequest {
            namespace: "bulwark".into(),
            task_queue: Some(TaskQueue {
                name: name.into(),
                kind: kind as i32,
                normal_name: normal.into(),
            }),
            identity: "worker@host".into(),
            ..Default::default()
        }
        .encode_to_vec()
    };
    let m = method("PollWorkflowTaskQueue");
    let normal = m
        .facts(&poll(TaskQueueKind::Normal, "bulwark-main", ""))
        .unwrap();
    assert_eq!(normal.task_queue.as_deref(), Some("bulwark-main"));
    assert_eq!(normal.namespace.as_deref(), Some("bulwark"));
    let sticky = m
        .facts(&poll(
            TaskQueueKind::Sticky,
            "host:1234-abcd",
            "bulwark-main",
        ))
        .unwrap();
    assert_eq!(sticky.task_queue.as_deref(), Some("bulwark-main"));
    // A normal-kind poll is routed by `name`: normal_name must not whitewash it.
    let spoof = m
        .facts(&poll(TaskQueueKind::Normal, "other", "bulwark-main"))
        .unwrap();
    assert_eq!(spoof.task_queue.as_deref(), Some("other"));

    let activity = wf::PollActivityTaskQueueRequest {
        namespace: "bulwark".into(),
        task_queue: Some(TaskQueue {
            name: "bulwark-acts".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let f = method("PollActivityTaskQueue")
        .facts(&activity.encode_to_vec())
        .unwrap();
    assert_eq!(f.task_queue.as_deref(), Some("bulwark-acts"));
}

#[test]
fn decodes_respond_calls_to_namespace_only() {
    let respond = wf::RespondWorkflowTaskCompletedRequest {
        task_token: vec![7; 64],
        namespace: "bulwark".into(),
        identity: "worker@host".into(),
        ..Default::default()
    };
    let f = method("RespondWorkflowTaskCompleted")
        .facts(&respond.encode_to_vec())
        .unwrap();
    assert_eq!(
        f,
        Facts {
            namespace: Some("bulwark".into()),
            ..Facts::default()
        }
    );
    let heartbeat = wf::RecordActivityTaskHeartbeatRequest {
        task_token: vec![1; 32],
        namespace: "bulwark".into(),
        ..Default::default()
    };
    let f = method("RecordActivityTaskHeartbeat")
        .facts(&heartbeat.encode_to_vec())
        .unwrap();
    assert_eq!(f.namespace.as_deref(), Some("bulwark"));
    assert_eq!(f.task_queue, None);
}

#[test]
fn decodes_operator_and_empty_requests() {
    let add = op::AddSearchAttributesRequest {
        namespace: "bulwark".into(),
        ..Default::default()
    };
    let f = method("OperatorService/AddSearchAttributes")
        .facts(&add.encode_to_vec())
        .unwrap();
    assert_eq!(f.namespace.as_deref(), Some("bulwark"));
    // GetSystemInfo's request is empty: no facts, no error.
    let f = method("GetSystemInfo").facts(&[]).unwrap();
    assert_eq!(f, Facts::default());
}

#[test]
fn decoding_follows_protobuf_merge_semantics() {
    // Two encodings concatenated are one message whose later scalars win and whose embedded
    // messages merge: the gate must read what the server will read.
    let mut bytes = start_request("bulwark-a", 10).encode_to_vec();
    let later = wf::StartWorkflowExecutionRequest {
        namespace: "second".into(),
        task_queue: Some(TaskQueue {
            name: "other".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    bytes.extend(later.encode_to_vec());
    let reference = wf::StartWorkflowExecutionRequest::decode(bytes.as_slice()).unwrap();
    let f = method("StartWorkflowExecution").facts(&bytes).unwrap();
    assert_eq!(f.namespace.as_deref(), Some(reference.namespace.as_str()));
    assert_eq!(
        f.task_queue.as_deref(),
        reference.task_queue.as_ref().map(|t| t.name.as_str())
    );
    assert_eq!(f.task_queue.as_deref(), Some("other"));
    assert_eq!(f.workflow_type.as_deref(), Some("ProcessOrder"));
}

#[test]
fn malformed_messages_are_errors() {
    let m = method("StartWorkflowExecution");
    let bytes = start_request("bulwark-a", 100).encode_to_vec();
    assert_eq!(
        m.facts(&bytes[..bytes.len() - 1]),
        Err(DecodeError::Truncated)
    );
    // Field 1 (namespace) sent as a varint.
    assert_eq!(
        m.facts(&[0x08, 0x01]),
        Err(DecodeError::WireType { field: 1, wire: 0 })
    );
    // Namespace that is not UTF-8.
    assert_eq!(
        m.facts(&[0x0a, 0x02, 0xff, 0xfe]),
        Err(DecodeError::Utf8 { field: 1 })
    );
    assert_eq!(m.facts(&[0xff; 11]), Err(DecodeError::BadVarint));
    // Field number 0.
    assert_eq!(m.facts(&[0x00]), Err(DecodeError::BadFieldNumber));
}

// ---------------------------------------------------------------- shipped policy

#[test]
fn shipped_policy_roles_in_order() {
    let p = shipped();
    assert_eq!(
        p.roles().collect::<Vec<_>>(),
        ["system", "worker", "client", "probe", "operator", "viewer"]
    );
    let p = Policy::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/gate-policy.toml"
    )))
    .unwrap();
    assert_eq!(p.roles().count(), 6);
}

#[test]
fn worker_polls_its_queues_only_and_never_changes_workflows() {
    let p = shipped();
    let w = |name: &str, f: &Facts| decide(&p, "worker", &["temporal-worker"], name, f);
    let ok = facts("bulwark", Some("bulwark-main"), None);
    for name in [
        "PollWorkflowTaskQueue",
        "PollActivityTaskQueue",
        "RespondWorkflowTaskCompleted",
        "RecordActivityTaskHeartbeat",
        "GetWorkflowExecutionHistory",
        "GetSystemInfo",
    ] {
        let d = w(name, &ok);
        assert!(d.allowed, "{name}: {}", d.rule);
        assert_eq!(d.role.as_deref(), Some("worker"));
        assert_eq!(d.rule, "role \"worker\" (gate-policy.toml line 21)");
    }
    let d = w(
        "PollWorkflowTaskQueue",
        &facts("bulwark", Some("other"), None),
    );
    assert!(!d.allowed);
    assert_eq!(
        d.rule,
        "task queue \"other\" is outside role \"worker\"'s task queues (gate-policy.toml line 24)"
    );
    for name in [
        "StartWorkflowExecution",
        "SignalWorkflowExecution",
        "SignalWithStartWorkflowExecution",
        "TerminateWorkflowExecution",
        "ResetWorkflowExecution",
        "DeleteWorkflowExecution",
        "RequestCancelWorkflowExecution",
        "OperatorService/AddSearchAttributes",
    ] {
        let d = w(name, &ok);
        assert!(!d.allowed, "worker may {name}");
        assert_eq!(d.role.as_deref(), Some("worker"));
    }
    let d = w("TerminateWorkflowExecution", &ok);
    assert_eq!(
        d.rule,
        "WorkflowService/TerminateWorkflowExecution is not allowed for role \"worker\" (gate-policy.toml line 21)"
    );
}

#[test]
fn client_starts_on_its_queues_and_cannot_poll() {
    let p = shipped();
    let c = |id: &str, name: &str, f: &Facts| decide(&p, id, &["temporal-client"], name, f);
    let ok = facts("bulwark", Some("bulwark-orders"), Some("ProcessOrder"));
    for id in ["api", "temporal-client"] {
        let d = c(id, "StartWorkflowExecution", &ok);
        assert!(d.allowed, "{}", d.rule);
        assert_eq!(d.role.as_deref(), Some("client"));
    }
    assert!(c("api", "CreateSchedule", &ok).allowed);
    assert!(
        !c(
            "api",
            "StartWorkflowExecution",
            &facts("bulwark", Some("x"), None)
        )
        .allowed
    );
    for name in [
        "PollWorkflowTaskQueue",
        "PollActivityTaskQueue",
        "TerminateWorkflowExecution",
        "ResetWorkflowExecution",
    ] {
        assert!(!c("api", name, &ok).allowed, "client may {name}");
    }
}

#[test]
fn role_choice_needs_identity_and_scope() {
    let p = shipped();
    let f = facts("bulwark", None, None);
    // Right identity, wrong scope: no role.
    let d = decide(&p, "worker", &["temporal-client"], "GetSystemInfo", &f);
    assert!(!d.allowed);
    assert_eq!(d.role, None);
    assert_eq!(
        d.rule,
        "no role in gate-policy.toml matches identity \"worker\" with scopes [\"temporal-client\"]"
    );
    // Unknown identity.
    assert!(!decide(&p, "mallory", &["temporal-system"], "GetSystemInfo", &f).allowed);
    // `temporal:*:write` matches one segment only.
    assert!(
        decide(
            &p,
            "worker",
            &["temporal:bulwark:write"],
            "GetSystemInfo",
            &f
        )
        .allowed
    );
    assert!(!decide(&p, "worker", &["temporal:a:b:write"], "GetSystemInfo", &f).allowed);
    // The system role has every method.
    let d = decide(
        &p,
        "admin",
        &["openid", "temporal-system"],
        "OperatorService/DeleteNamespace",
        &f,
    );
    assert!(d.allowed);
    assert_eq!(d.role.as_deref(), Some("system"));
}

#[test]
fn operator_and_viewer() {
    let p = shipped();
    let f = facts("bulwark", Some("any-queue"), Some("AnyType"));
    let o = |name: &str| decide(&p, "operator", &["temporal:bulwark:admin"], name, &f).allowed;
    assert!(o("TerminateWorkflowExecution"));
    assert!(o("ResetWorkflowExecution"));
    assert!(!o("RegisterNamespace"));
    assert!(!o("UpdateNamespace"));
    assert!(!o("DeprecateNamespace"));
    assert!(!o("OperatorService/AddSearchAttributes"));
    let v = |name: &str| decide(&p, "ui", &["temporal:bulwark:read"], name, &f).allowed;
    assert!(v("DescribeWorkflowExecution"));
    assert!(v("ListWorkflowExecutions"));
    assert!(v("GetWorkflowExecutionHistory"));
    assert!(!v("StartWorkflowExecution"));
    assert!(!v("TerminateWorkflowExecution"));
    assert!(!v("PollWorkflowTaskQueue"));
}

#[test]
fn namespace_and_workflow_type_constraints() {
    let text = r#"version = 1
[roles.narrow]
identities = ["api"]
scopes = ["s"]
namespaces = ["bulwark"]
workflow_types = ["Order*"]
methods = ["StartWorkflowExecution", "WorkflowService/GetSystemInfo"]
"#;
    let p = Policy::parse(text, "narrow.toml").unwrap();
    let d = |f: &Facts| decide(&p, "api", &["s"], "StartWorkflowExecution", f);
    assert!(d(&facts("bulwark", Some("q"), Some("OrderFlow"))).allowed);
    let denied = d(&facts("other", Some("q"), Some("OrderFlow")));
    assert!(!denied.allowed);
    assert_eq!(
        denied.rule,
        "namespace \"other\" is outside role \"narrow\"'s namespaces (narrow.toml line 5)"
    );
    let denied = d(&facts("bulwark", None, Some("Evil")));
    assert_eq!(
        denied.rule,
        "workflow type \"Evil\" is outside role \"narrow\"'s workflow types (narrow.toml line 6)"
    );
    // A call that names no namespace (GetSystemInfo) is not held to the namespace list.
    assert!(decide(&p, "api", &["s"], "GetSystemInfo", &Facts::default()).allowed);
    // Health checks are open.
    let health = Catalog::lookup("/grpc.health.v1.Health/Check").unwrap();
    assert!(
        p.decide(
            &Caller {
                identity: "x",
                scopes: &[]
            },
            health,
            &Facts::default()
        )
        .allowed
    );
}

// ---------------------------------------------------------------- validation errors

fn error(text: &str) -> PolicyError {
    Policy::parse(text, "p.toml").expect_err("policy accepted")
}

const ROLE: &str = "version = 1\n[roles.r]\nidentities = [\"a\"]\nscopes = [\"s\"]\n";

#[test]
fn unknown_method_is_refused_with_its_line() {
    let e = error(&format!(
        "{ROLE}methods = [\n  \"GetSystemInfo\",\n  \"StartWorkflow\",\n]\n"
    ));
    assert_eq!(e.line(), Some(7), "{e}");
    let msg = e.to_string();
    assert!(msg.starts_with("p.toml:7:3: "), "{msg}");
    assert!(msg.contains("unknown method \"StartWorkflow\""), "{msg}");
    let e = error(&format!(
        "{ROLE}methods = [\"OperatorService/StartWorkflowExecution\"]\n"
    ));
    assert_eq!(e.line(), Some(5), "{e}");
    let e = error(&format!("{ROLE}methods = [\"startworkflowexecution\"]\n"));
    assert!(
        e.to_string()
            .contains("did you mean \"StartWorkflowExecution\""),
        "{e}"
    );
}

#[test]
fn typo_key_is_refused_with_its_line() {
    let e = error(&format!(
        "{ROLE}task_queus = [\"x\"]\nmethods = [\"GetSystemInfo\"]\n"
    ));
    assert!(matches!(e, PolicyError::Syntax { .. }), "{e:?}");
    assert_eq!(e.line(), Some(5), "{e}");
    assert!(e.to_string().contains("task_queus"), "{e}");
    let e = error("version = 1\nrole = 3\n");
    assert_eq!(e.line(), Some(2), "{e}");
}

#[test]
fn other_validation_errors_name_their_line() {
    // Duplicate role.
    let dup = format!("{ROLE}methods = [\"GetSystemInfo\"]\n[roles.r]\nidentities = [\"b\"]\n");
    assert_eq!(error(&dup).line(), Some(6));
    // Version.
    let e =
        error("\nversion = 2\n[roles.r]\nidentities=[\"a\"]\nscopes=[\"s\"]\nmethods=[\"*\"]\n");
    assert_eq!(e.line(), Some(2));
    assert!(e.to_string().contains("version 2"), "{e}");
    // Empty identities.
    let e = error("version = 1\n[roles.r]\nidentities = []\nscopes = [\"s\"]\nmethods = [\"*\"]\n");
    assert_eq!(e.line(), Some(3), "{e}");
    // Missing scopes: the role's line.
    let e = error("version = 1\n[roles.r]\nidentities = [\"a\"]\nmethods = [\"*\"]\n");
    assert_eq!(e.line(), Some(2), "{e}");
    // Bad glob.
    let e = error(&format!(
        "{ROLE}task_queues = [\"ok-*\", \"bad-?\"]\nmethods = [\"*\"]\n"
    ));
    assert_eq!(e.line(), Some(5), "{e}");
    assert!(e.to_string().contains("bad glob"), "{e}");
    let e = error(
        "version = 1\n[roles.r]\nidentities = [\"a\"]\nscopes = [\"t:**\"]\nmethods = [\"*\"]\n",
    );
    assert_eq!(e.line(), Some(4), "{e}");
    // No methods, and empty methods.
    assert_eq!(error(ROLE).line(), Some(2));
    assert_eq!(error(&format!("{ROLE}\nmethods = []\n")).line(), Some(6));
    // No roles at all.
    assert_eq!(error("version = 1\n").line(), Some(1));
    // Syntax error.
    assert_eq!(error("version = 1\n[roles.r\n").line(), Some(2));
    // Read error names the file.
    let e = Policy::load(std::path::Path::new("/nonexistent/gate-policy.toml")).unwrap_err();
    assert!(
        e.to_string().contains("/nonexistent/gate-policy.toml"),
        "{e}"
    );
}

#[test]
fn a_constrained_queue_left_empty_is_refused() {
    use prost::Message as _;
    let p = shipped();
    let scopes = vec!["temporal-worker".to_owned()];
    let caller = Caller {
        identity: "worker",
        scopes: &scopes,
    };
    let m =
        Catalog::lookup("/temporal.api.workflowservice.v1.WorkflowService/PollWorkflowTaskQueue")
            .unwrap();
    let empty = temporalio_common::protos::temporal::api::workflowservice::v1::PollWorkflowTaskQueueRequest {
        namespace: "default".into(),
        ..Default::default()
    }
    .encode_to_vec();
    let d = p.decide(&caller, m, &m.facts(&empty).unwrap());
    assert!(
        !d.allowed && d.rule.contains("names no task queue"),
        "{d:?}"
    );
}
