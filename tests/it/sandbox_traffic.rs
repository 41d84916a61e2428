//! Traffic in the sandbox, read through clients nobody here wrote: the real `aws route53` moves
//! weights, `curl` asks the Prometheus-compatible API what the requests met, `kubectl` shows the
//! Services' load balancers. Requests follow the weights resolvers see (after INSYNC and the
//! old answer's TTL), split exactly as the weights say, and a workload that is Ready but
//! answers errors shows up only in the counters.

use std::process::Command;

use serde_json::Value;

use crate::common::{POLL_TIMEOUT, TestSandbox, Timed, poll};

/// One minute of emulated time is one real second: changes propagate in a second and the
/// record's 60 s TTL lasts another. Blue's set points at `shop/web`'s load balancer; green's
/// at a name no cluster owns, so its share shows as 502s.
const SCENARIO: &str = r#"apiVersion: eks-upgrade/v1
kind: Scenario
metadata: { name: traffic }
spec:
  speed: 60
  cluster: { name: demo, region: us-east-1, version: "1.33" }
  velero: { installed: false }
  nodegroups: [ { name: general, nodes: 2 } ]
  workloads:
    - { kind: Deployment, namespace: shop, name: web, replicas: 2 }
  objects:
    - apiVersion: v1
      kind: Service
      metadata: { name: web, namespace: shop }
      spec: { type: LoadBalancer, selector: { app.kubernetes.io/name: web }, ports: [ { port: 80 } ] }
  route53:
    hostedZones:
      - name: example.com
        records:
          - { name: app.example.com, type: CNAME, setIdentifier: blue, weight: 100, service: shop/web }
          - { name: app.example.com, type: CNAME, setIdentifier: green, weight: 0, values: [green.elb.example.net] }
  traffic:
    - { record: app.example.com, rate: 10 }
"#;

fn env_var(sb: &TestSandbox, name: &str) -> String {
    sb.env()
        .into_iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("the sandbox exports {name}"))
}

/// `curl` against the Prometheus API: (HTTP status, JSON body).
fn prometheus(sb: &TestSandbox, path: &str, form: &[(&str, String)]) -> (u16, Value) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-w", "\n%{http_code}"]);
    for (k, v) in form {
        cmd.arg("--data-urlencode").arg(format!("{k}={v}"));
    }
    cmd.arg(format!("{}{path}", env_var(sb, "PROMETHEUS_URL")));
    let out = cmd.output_timed().expect("curl runs");
    let (body, code) = out
        .stdout
        .trim_end()
        .rsplit_once('\n')
        .expect("curl printed the status");
    let code: u16 = code.parse().expect("an HTTP status");
    (
        code,
        serde_json::from_str(body).unwrap_or(Value::String(body.into())),
    )
}

/// An instant query's one value, `None` for an empty result.
fn scalar(sb: &TestSandbox, query: &str, time: Option<f64>) -> Option<f64> {
    let mut form = vec![("query", query.to_string())];
    if let Some(t) = time {
        form.push(("time", format!("{t:.3}")));
    }
    let (code, body) = prometheus(sb, "/api/v1/query", &form);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "success", "{body}");
    let result = body["data"]["result"].as_array().expect("a vector");
    assert!(result.len() <= 1, "{body}");
    result.first().map(|r| {
        r["value"][1]
            .as_str()
            .expect("a value")
            .parse()
            .expect("a number")
    })
}

fn aws(sb: &TestSandbox, args: &[&str]) -> Value {
    let out = Command::new("aws")
        .arg("route53")
        .args(args)
        .args(["--output", "json"])
        .envs(sb.env())
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output_timed()
        .expect("the `aws` CLI is installed");
    assert_eq!(out.code, Some(0), "aws route53 {args:?}:\n{}", out.stderr);
    serde_json::from_str(&out.stdout).expect("aws prints JSON")
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

const ALL: &str = r#"nginx_ingress_controller_requests{host="app.example.com"}"#;
const UNOWNED: &str = r#"nginx_ingress_controller_requests{host="app.example.com",status="502"}"#;

#[test]
fn traffic_follows_the_weights_resolvers_see_and_splits_exactly() {
    let sb = TestSandbox::start(Some(SCENARIO));

    // The Service's load balancer name, as kubectl shows it, is the value of blue's set.
    let out = Command::new("kubectl")
        .args(["get", "service", "web", "-n", "shop", "-o", "json"])
        .envs(sb.env())
        .output_timed()
        .expect("kubectl runs");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let service: Value = serde_json::from_str(&out.stdout).expect("JSON");
    let hostname = service["status"]["loadBalancer"]["ingress"][0]["hostname"]
        .as_str()
        .expect("a load balancer name")
        .to_string();
    assert!(
        hostname.starts_with("k8s-shop-web-") && hostname.ends_with(".elb.us-east-1.amazonaws.com"),
        "{hostname}"
    );
    let zone = aws(&sb, &["list-hosted-zones"])["HostedZones"][0]["Id"]
        .as_str()
        .expect("a zone id")
        .to_string();
    let sets = aws(
        &sb,
        &["list-resource-record-sets", "--hosted-zone-id", &zone],
    );
    let blue = sets["ResourceRecordSets"]
        .as_array()
        .expect("sets")
        .iter()
        .find(|s| s["SetIdentifier"] == "blue")
        .expect("blue's set")
        .clone();
    assert_eq!(blue["ResourceRecords"][0]["Value"], hostname.as_str());

    // Everything goes to blue, and blue's Ready pods answer 200.
    let blue_ok = format!(
        r#"sum(increase(nginx_ingress_controller_requests{{host="app.example.com",cluster="demo",status="200"}}[2s]))"#
    );
    poll("blue to serve requests", POLL_TIMEOUT, || {
        match scalar(&sb, &blue_ok, None) {
            Some(n) if n >= 10.0 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    assert_eq!(
        scalar(&sb, &format!("sum(increase({UNOWNED}[2s]))"), None),
        None
    );

    // 10 % to green.
    let before = now();
    let batch = serde_json::json!({"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": "app.example.com", "Type": "CNAME",
         "SetIdentifier": "blue", "Weight": 90, "TTL": 60, "ResourceRecords": [{"Value": hostname}]}},
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": "app.example.com", "Type": "CNAME",
         "SetIdentifier": "green", "Weight": 10, "TTL": 60,
         "ResourceRecords": [{"Value": "green.elb.example.net"}]}},
    ]})
    .to_string();
    let change = aws(
        &sb,
        &[
            "change-resource-record-sets",
            "--hosted-zone-id",
            &zone,
            "--change-batch",
            &batch,
        ],
    );
    let id = change["ChangeInfo"]["Id"]
        .as_str()
        .expect("an id")
        .to_string();

    // Once the change is seen, exactly one request in ten meets green's name.
    let ratio = format!("sum(increase({UNOWNED}[3s])) / sum(increase({ALL}[3s]))");
    let settled = poll(
        "a tenth of the requests to go to green",
        POLL_TIMEOUT,
        || match scalar(&sb, &ratio, None) {
            Some(r) if (0.095..=0.105).contains(&r) => Ok(r),
            other => Err(format!("{other:?}")),
        },
    );
    assert_eq!(
        aws(&sb, &["get-change", "--id", &id])["ChangeInfo"]["Status"],
        "INSYNC"
    );
    // Before the change was INSYNC (one real second after it was made), resolvers still
    // answered blue only: no request met green's name in that second.
    let early = scalar(
        &sb,
        &format!("sum(increase({UNOWNED}[900ms]))"),
        Some(before + 0.9),
    );
    assert!(
        early.is_none_or(|n| n == 0.0),
        "{early:?} (settled at {settled})"
    );
}

#[test]
fn a_ready_workload_that_serves_errors_shows_only_in_the_counters() {
    let scenario = SCENARIO.replace(
        "  velero: { installed: false }\n",
        "  velero: { installed: false }\n  faults: { servesErrors: [shop/web] }\n",
    );
    let sb = TestSandbox::start(Some(&scenario));
    let errors = r#"sum(increase(nginx_ingress_controller_requests{host="app.example.com",cluster="demo",status="500"}[2s]))"#;
    poll("blue's requests to fail", POLL_TIMEOUT, || {
        match scalar(&sb, errors, None) {
            Some(n) if n >= 10.0 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let ok = r#"sum(increase(nginx_ingress_controller_requests{status="200"}[5m]))"#;
    assert_eq!(scalar(&sb, ok, None), None);
    // The pods are Ready all along: only traffic shows the fault.
    let out = Command::new("kubectl")
        .args([
            "get",
            "deployment",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ])
        .envs(sb.env())
        .output_timed()
        .expect("kubectl runs");
    assert_eq!(out.stdout.trim(), "2", "{}", out.stderr);
}

#[test]
fn the_prometheus_api_refuses_what_it_does_not_evaluate_as_prometheus_refuses() {
    let sb = TestSandbox::start(Some(SCENARIO));
    let (code, body) = prometheus(
        &sb,
        "/api/v1/query",
        &[("query", format!("avg(rate({ALL}[1m]))"))],
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["status"], "error");
    assert_eq!(body["errorType"], "bad_data");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("`avg`")),
        "{body}"
    );
    let (code, body) = prometheus(&sb, "/api/v1/query", &[]);
    assert_eq!((code, &body["errorType"]), (400, &Value::from("bad_data")));
    let (code, body) = prometheus(
        &sb,
        "/api/v1/query",
        &[("query", "1".into()), ("time", "yesterday".into())],
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("\"time\"")),
        "{body}"
    );
    let (code, body) = prometheus(&sb, "/api/v1/query", &[("query", "2 / 4".into())]);
    assert_eq!(
        (code, &body["data"]["resultType"]),
        (200, &Value::from("scalar"))
    );
    assert_eq!(body["data"]["result"][1], "0.5");
}

#[test]
fn scenarios_refuse_traffic_and_records_that_point_nowhere() {
    let bad = SCENARIO
        .replace("record: app.example.com", "record: shop.example.com")
        .replace("service: shop/web", "service: shop/api")
        .replace(
            "  velero: { installed: false }\n",
            "  velero: { installed: false }\n  faults: { servesErrors: [shop/nope] }\n",
        );
    let err = eks_upgrade_sandbox::Scenario::parse(std::path::Path::new("bad.yaml"), &bad)
        .expect_err("refused");
    let eks_upgrade_core::format::LoadError::Invalid { problems, .. } = err else {
        panic!("not a list of problems: {err}");
    };
    let text: String = problems
        .iter()
        .map(|p| format!("{}\n", p.message))
        .collect();
    for needle in [
        "`shop.example.com`, which is not a record",
        "`shop/api`, which is not a Service of type LoadBalancer",
        "`faults.servesErrors` names `shop/nope`",
    ] {
        assert!(text.contains(needle), "{needle}:\n{text}");
    }
}
