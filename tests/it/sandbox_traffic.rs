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
    let blue_ok = r#"sum(increase(nginx_ingress_controller_requests{host="app.example.com",cluster="demo",status="200"}[2s]))"#;
    poll("blue to serve requests", POLL_TIMEOUT, || {
        match scalar(&sb, blue_ok, None) {
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

/// Green's copy of the shop: the Deployment and the LoadBalancer Service a restore would bring.
const GREEN_SHOP: &str = r#"apiVersion: v1
kind: Namespace
metadata: { name: shop }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: shop }
spec:
  replicas: 2
  selector: { matchLabels: { app.kubernetes.io/name: web } }
  template:
    metadata: { labels: { app.kubernetes.io/name: web } }
    spec: { containers: [ { name: web, image: "public.ecr.aws/nginx/nginx:1.27" } ] }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec: { type: LoadBalancer, selector: { app.kubernetes.io/name: web }, ports: [ { port: 80 } ] }
"#;

fn run(sb: &TestSandbox, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .envs(sb.env())
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output_timed()
        .expect("the CLI runs");
    assert_eq!(out.code, Some(0), "{program} {args:?}:\n{}", out.stderr);
    out.stdout
}

#[test]
fn a_workload_broken_only_on_green_fails_only_greens_share() {
    let scenario = SCENARIO.replace(
        "  velero: { installed: false }\n",
        "  velero: { installed: false }\n  newClusters: { faults: { servesErrors: [shop/web] } }\n  timings: { clusterCreate: 60s, nodegroupCreate: 60s }\n",
    );
    let sb = TestSandbox::start(Some(&scenario));
    let subnets = sb.sandbox.world.scenario.cluster_subnet_ids();
    run(
        &sb,
        "aws",
        &[
            "eks",
            "create-cluster",
            "--name",
            "green",
            "--kubernetes-version",
            "1.34",
            "--role-arn",
            "arn:aws:iam::111122223333:role/eks",
            "--resources-vpc-config",
            &format!("subnetIds={}", subnets.join(",")),
        ],
    );
    poll("green to be ACTIVE", POLL_TIMEOUT, || {
        let d: Value = serde_json::from_str(&run(
            &sb,
            "aws",
            &[
                "eks",
                "describe-cluster",
                "--name",
                "green",
                "--output",
                "json",
            ],
        ))
        .expect("JSON");
        (d["cluster"]["status"] == "ACTIVE")
            .then_some(())
            .ok_or(d["cluster"]["status"].to_string())
    });
    let mut args = vec![
        "eks",
        "create-nodegroup",
        "--cluster-name",
        "green",
        "--nodegroup-name",
        "general",
        "--node-role",
        "arn:aws:iam::111122223333:role/node",
        "--scaling-config",
        "minSize=2,maxSize=2,desiredSize=2",
        "--subnets",
    ];
    args.extend(subnets.iter().map(String::as_str));
    run(&sb, "aws", &args);
    let kubeconfig = sb.sandbox.dir.join("green-kubeconfig");
    let kubeconfig = kubeconfig.to_str().expect("a UTF-8 path");
    run(
        &sb,
        "aws",
        &[
            "eks",
            "update-kubeconfig",
            "--name",
            "green",
            "--kubeconfig",
            kubeconfig,
        ],
    );
    let manifest = sb.sandbox.dir.join("green-shop.yaml");
    std::fs::write(&manifest, GREEN_SHOP).expect("manifest written");
    let manifest = manifest.to_str().expect("a UTF-8 path");
    run(
        &sb,
        "kubectl",
        &["--kubeconfig", kubeconfig, "apply", "-f", manifest],
    );
    let green_lb = poll(
        "green's web to be Ready with a load balancer",
        POLL_TIMEOUT,
        || {
            let svc: Value = serde_json::from_str(&run(
                &sb,
                "kubectl",
                &[
                    "--kubeconfig",
                    kubeconfig,
                    "get",
                    "service",
                    "web",
                    "-n",
                    "shop",
                    "-o",
                    "json",
                ],
            ))
            .expect("JSON");
            let ready = run(
                &sb,
                "kubectl",
                &[
                    "--kubeconfig",
                    kubeconfig,
                    "get",
                    "deployment",
                    "web",
                    "-n",
                    "shop",
                    "-o",
                    "jsonpath={.status.readyReplicas}",
                ],
            );
            match svc["status"]["loadBalancer"]["ingress"][0]["hostname"].as_str() {
                Some(h) if ready.trim() == "2" => Ok(h.to_string()),
                other => Err(format!("{other:?}, {ready} ready")),
            }
        },
    );

    // 10 % to green's load balancer.
    let zone = aws(&sb, &["list-hosted-zones"])["HostedZones"][0]["Id"]
        .as_str()
        .expect("a zone id")
        .to_string();
    let blue_lb = sb
        .sandbox
        .world
        .route53
        .effective("app.example.com", "CNAME", 1.0)[0]
        .values[0]
        .clone();
    let batch = serde_json::json!({"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": "app.example.com", "Type": "CNAME",
         "SetIdentifier": "blue", "Weight": 90, "TTL": 60, "ResourceRecords": [{"Value": blue_lb}]}},
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": "app.example.com", "Type": "CNAME",
         "SetIdentifier": "green", "Weight": 10, "TTL": 60, "ResourceRecords": [{"Value": green_lb}]}},
    ]})
    .to_string();
    aws(
        &sb,
        &[
            "change-resource-record-sets",
            "--hosted-zone-id",
            &zone,
            "--change-batch",
            &batch,
        ],
    );
    let of = |cluster: &str, status: &str| {
        format!(
            r#"sum(increase(nginx_ingress_controller_requests{{host="app.example.com",cluster="{cluster}",status="{status}"}}[3s]))"#
        )
    };
    let share = format!("{} / sum(increase({ALL}[3s]))", of("green", "500"));
    poll(
        "a tenth of the requests to fail on green",
        POLL_TIMEOUT,
        || match scalar(&sb, &share, None) {
            Some(r) if (0.095..=0.105).contains(&r) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    // Green answered only errors, blue only successes.
    assert_eq!(scalar(&sb, &of("green", "200"), None), None);
    assert_eq!(scalar(&sb, &of("demo", "500"), None), None);
    assert!(scalar(&sb, &of("demo", "200"), None).is_some_and(|n| n > 0.0));
}

#[test]
fn the_tools_metrics_client_reads_what_the_sandbox_counts() {
    let sb = TestSandbox::start(Some(SCENARIO));
    let base = env_var(&sb, "PROMETHEUS_URL");
    let http = reqwest::Client::new();
    let requests = format!("sum(increase({ALL}[2s]))");
    let seen = sb.block_on(crate::common::poll_async(
        "requests to be counted",
        POLL_TIMEOUT,
        async || {
            eks_upgrade_core::cloud::metrics::instant(&http, &base, &requests)
                .await
                .expect("the query is answered")
                .filter(|n| *n > 0.0)
        },
    ));
    assert!(seen > 0.0);
    // No series: nothing to judge by, which is not zero errors.
    let none = sb.block_on(eks_upgrade_core::cloud::metrics::instant(
        &http,
        &base,
        r#"sum(increase(nginx_ingress_controller_requests{cluster="green"}[2s]))"#,
    ));
    assert_eq!(none.expect("answered"), None);
    // A query the sandbox refuses comes back as Prometheus's refusal.
    let refused = sb.block_on(eks_upgrade_core::cloud::metrics::instant(
        &http, &base, "avg(up)",
    ));
    let err = refused.expect_err("refused");
    assert!(err.to_string().contains("`avg`"), "{err}");
}
