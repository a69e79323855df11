use super::*;
use serde_json::json;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

const KEY_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

#[test]
fn parse_and_print() {
    // (input, canonical form)
    let cases = [
        ("", ""),
        ("a=b", "a=b"),
        ("a==b", "a==b"),
        ("a!=b", "a!=b"),
        ("a=", "a="),
        (" a in ( y , x ) ", "a in (x,y)"),
        ("a notin (x)", "a notin (x)"),
        ("a", "a"),
        ("!a", "!a"),
        ("a>1", "a>1"),
        ("a<10", "a<10"),
        ("b=1,a=2", "a=2,b=1"),
        ("example.com/app=web,tier", "example.com/app=web,tier"),
        ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
        ("a in (x,x)", "a in (x)"),
        ("in in (in),notin notin (notin)", "in in (in),notin notin (notin)"),
        ("a\t!=\tb , ! c", "a!=b,!c"),
    ];
    for (input, want) in cases {
        let sel = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(sel.to_string(), want, "{input:?}");
        let again = LabelSelector::parse(&sel.to_string()).unwrap();
        assert_eq!(again, sel, "round trip of {input:?}");
    }
}

#[test]
fn parse_errors() {
    let cases = [
        ("a in x", "unable to parse requirement: found 'x' expected: '('".to_string()),
        ("a in (x", "unable to parse requirement: found '', expected: ',' or ')'".to_string()),
        ("a in", "unable to parse requirement: found '' expected: '('".to_string()),
        (
            "a b",
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt".to_string(),
        ),
        ("a=b c", "found 'c', expected: ',' or 'end of string'".to_string()),
        ("a=b,", "found '', expected: identifier after ','".to_string()),
        ("=a", "found '=', expected: !, identifier, or 'end of string'".to_string()),
        ("!", "unable to parse requirement: found '', expected: identifier".to_string()),
        (
            "x$=y",
            format!("unable to parse requirement: <nil>: Invalid value: \"x$\": {KEY_MSG}"),
        ),
        (
            "a/b/c",
            "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".to_string(),
        ),
        (
            "a>b",
            "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must be an integer".to_string(),
        ),
        (
            "a<-1",
            "unable to parse requirement: values[0][a]: Invalid value: \"-1\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_string(),
        ),
        (
            "a=b$",
            "unable to parse requirement: values[0][a]: Invalid value: \"b$\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_string(),
        ),
    ];
    for (input, want) in cases {
        let err = LabelSelector::parse(input).expect_err(input);
        assert_eq!(err, SelectorError::Label(want), "{input:?}");
        assert_eq!(err.status_code(), 400);
    }
}

#[test]
fn label_matching() {
    let pod = labels(&[("app", "web"), ("tier", "front"), ("cores", "8")]);
    let cases = [
        ("", true),
        ("app=web", true),
        ("app==web", true),
        ("app=db", false),
        ("app!=db", true),
        ("missing!=x", true),
        ("app in (db,web)", true),
        ("app in (db)", false),
        ("missing in (x)", false),
        ("app notin (web)", false),
        ("missing notin (x)", true),
        ("tier", true),
        ("missing", false),
        ("!missing", true),
        ("!tier", false),
        ("cores>4", true),
        ("cores>8", false),
        ("cores<16", true),
        ("app>1", false),
        ("missing<1", false),
        ("app=web,tier=back", false),
        ("app=web,tier in (front)", true),
        ("missing=", false),
    ];
    for (input, want) in cases {
        let sel = LabelSelector::parse(input).unwrap();
        assert_eq!(sel.matches(&pod), want, "{input:?}");
    }
}

#[test]
fn matches_object_labels() {
    let sel = LabelSelector::parse("app=web,!canary").unwrap();
    assert!(sel.matches_value(&json!({"metadata": {"labels": {"app": "web"}}})));
    assert!(!sel.matches_value(&json!({"metadata": {"labels": {"app": "web", "canary": "1"}}})));
    assert!(!sel.matches_value(&json!({"metadata": {"name": "x"}})));
    assert!(
        LabelSelector::parse("!app")
            .unwrap()
            .matches_value(&json!({"metadata": {}}))
    );
    assert!(LabelSelector::default().matches_value(&json!({})));
}

fn api(value: serde_json::Value) -> ApiLabelSelector {
    serde_json::from_value(value).unwrap()
}

#[test]
fn from_typed_selectors() {
    let sel = LabelSelector::from_label_selector(&api(json!({
        "matchLabels": {"tier": "front", "app": "web"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ],
    })))
    .unwrap();
    assert_eq!(sel.to_string(), "app=web,!canary,env in (dev,prod),tier=front");
    let pod = labels(&[("app", "web"), ("tier", "front"), ("env", "dev")]);
    assert!(sel.matches(&pod));
    assert!(!sel.matches(&labels(&[("app", "web"), ("tier", "front")])));
    assert_eq!(sel.requires_exact_match("app"), Some("web"));
    assert_eq!(sel.requires_exact_match("env"), None);

    let everything = LabelSelector::from_label_selector(&api(json!({}))).unwrap();
    assert!(everything.is_empty() && everything.matches(&pod));
    assert_eq!(everything.to_string(), "");

    let nothing = LabelSelector::from_optional(None).unwrap();
    assert!(!nothing.is_empty() && !nothing.matches(&pod) && !nothing.matches(&BTreeMap::new()));
    assert_eq!(nothing.to_string(), "");
    assert!(
        LabelSelector::from_optional(Some(&api(json!({}))))
            .unwrap()
            .matches(&pod)
    );
}

#[test]
fn typed_selector_errors() {
    let cases = [
        (
            json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
            SelectorError::Operator("Gt".into()),
            "\"Gt\" is not a valid label selector operator",
        ),
        (
            json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
            SelectorError::Label(
                "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty".into(),
            ),
            "",
        ),
        (
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
            SelectorError::Label(
                "values: Invalid value: [\"x\"]: values set must be empty for exists and does not exist".into(),
            ),
            "",
        ),
        (
            json!({"matchLabels": {"bad key": "x y"}}),
            SelectorError::Label(format!(
                "[key: Invalid value: \"bad key\": {KEY_MSG}, values[0][bad key]: Invalid value: \"x y\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')]"
            )),
            "",
        ),
    ];
    for (input, want, text) in cases {
        let err = LabelSelector::from_label_selector(&api(input.clone())).expect_err("invalid");
        assert_eq!(err, want, "{input}");
        if !text.is_empty() {
            assert_eq!(err.to_string(), text);
        }
    }
}

fn pod(node: Option<&str>, phase: &str) -> serde_json::Value {
    let mut p = json!({
        "metadata": {"name": "web-1", "namespace": "default"},
        "spec": {"restartPolicy": "Always"},
        "status": {"phase": phase, "podIPs": [{"ip": "10.0.0.7"}]},
    });
    if let Some(n) = node {
        p["spec"]["nodeName"] = json!(n);
    }
    p
}

#[test]
fn field_selector_matching() {
    let unscheduled = pod(None, "Pending");
    let running = pod(Some("n1"), "Running");
    // (kind, selector, matches unscheduled, matches running)
    let cases = [
        ("", true, true),
        ("spec.nodeName=", true, false),
        ("spec.nodeName!=", false, true),
        ("spec.nodeName=n1", false, true),
        ("spec.host=n1", false, true),
        ("status.phase!=Running,spec.restartPolicy=Always", true, false),
        ("metadata.name==web-1,metadata.namespace=default", true, true),
        ("spec.hostNetwork=false", true, true),
        ("status.podIP=10.0.0.7", true, true),
        ("status.podIPs=10.0.0.7", false, false),
        ("spec.schedulerName=", true, true),
    ];
    for (input, want_unscheduled, want_running) in cases {
        let sel = FieldSelector::parse("Pod", input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(sel.matches(&unscheduled), want_unscheduled, "{input} on unscheduled");
        assert_eq!(sel.matches(&running), want_running, "{input} on running");
    }
    assert!(FieldSelector::parse("Pod", "").unwrap().is_empty());
    assert_eq!(
        FieldSelector::parse("Pod", "spec.host=n1")
            .unwrap()
            .requires_exact_match("spec.nodeName"),
        Some("n1")
    );
}

#[test]
fn field_selectors_of_other_kinds() {
    let event = json!({"involvedObject": {"kind": "Pod", "name": "web-1"}, "reason": "Failed",
        "reportingComponent": "kubelet", "type": "Warning"});
    let cases = [
        (
            "Event",
            "involvedObject.kind=Pod,involvedObject.name=web-1",
            &event,
            true,
        ),
        ("Event", "source=kubelet", &event, true),
        ("Event", "type=Normal", &event, false),
        ("Node", "spec.unschedulable=false", &json!({"spec": {}}), true),
        (
            "Node",
            "spec.unschedulable=true",
            &json!({"spec": {"unschedulable": true}}),
            true,
        ),
        ("Secret", "type=Opaque", &json!({"type": "Opaque"}), true),
        (
            "Namespace",
            "status.phase=Active",
            &json!({"status": {"phase": "Active"}}),
            true,
        ),
        (
            "ReplicationController",
            "status.replicas=0",
            &json!({"status": {}}),
            true,
        ),
        ("Job", "status.successful=1", &json!({"status": {"succeeded": 1}}), true),
        (
            "ConfigMap",
            "metadata.name=cfg",
            &json!({"metadata": {"name": "cfg"}}),
            true,
        ),
        (
            "PriorityClass",
            "metadata.namespace=",
            &json!({"metadata": {"name": "high"}}),
            true,
        ),
    ];
    for (kind, input, object, want) in cases {
        let sel = FieldSelector::parse(kind, input).unwrap_or_else(|e| panic!("{kind} {input}: {e}"));
        assert_eq!(sel.matches(object), want, "{kind} {input}");
    }
}

#[test]
fn field_selector_syntax() {
    // (selector, canonical form, value of metadata.name)
    let sel = FieldSelector::parse("ConfigMap", r"metadata.name=a\,b\=c\\d").unwrap();
    assert_eq!(sel.requires_exact_match("metadata.name"), Some(r"a,b=c\d"));
    assert_eq!(sel.to_string(), r"metadata.name=a\,b\=c\\d");
    assert!(sel.matches(&json!({"metadata": {"name": r"a,b=c\d"}})));
    let sorted = FieldSelector::parse("Pod", "status.phase==Running,,metadata.name!=x,").unwrap();
    assert_eq!(sorted.to_string(), "metadata.name!=x,status.phase=Running");
    assert_eq!(FieldSelector::parse("Pod", &sorted.to_string()).unwrap(), sorted);
}

#[test]
fn field_selector_errors() {
    let cases = [
        ("Pod", "spec.foo=x", "field label not supported: spec.foo"),
        (
            "Node",
            "metadata.namespace=x",
            "field label not supported: metadata.namespace",
        ),
        (
            "ConfigMap",
            "data.x=1",
            "\"data.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
        ),
        (
            "ReplicaSet",
            "status.replicas=0",
            "\"status.replicas\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
        ),
        ("Job", "spec.x=1", "field label \"spec.x\" not supported for \"Job\""),
        ("Pod", "abc", "invalid selector: 'abc'; can't understand 'abc'"),
        (
            "Pod",
            r"metadata.name=a\b",
            r"invalid field selector: invalid escape sequence: \b",
        ),
        (
            "Pod",
            r"metadata.name=a\",
            r"invalid field selector: invalid escape sequence: \",
        ),
        (
            "Pod",
            "metadata.name=a=b",
            "invalid field selector: unescaped character in value: 61",
        ),
    ];
    for (kind, input, want) in cases {
        let err = FieldSelector::parse(kind, input).expect_err(input);
        assert_eq!(err.to_string(), want, "{kind} {input}");
        assert_eq!(err.status_code(), 400);
    }
    assert!(matches!(
        FieldSelector::parse("Pod", "spec.foo=x"),
        Err(SelectorError::UnsupportedField { field, .. }) if field == "spec.foo"
    ));
}
