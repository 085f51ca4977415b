//! Proves the fake API server in `tests/common/apiserver.rs` speaks the list/watch protocol well
//! enough for the real `kube::Client` and `kube::runtime::watcher`.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::apiserver::{ApiServer, wait_for};
use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(20);

/// Runs a test body with an overall time limit.
async fn bounded<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(90), f)
        .await
        .expect("test exceeded its time limit");
}

fn pod(ns: &str, name: &str, labels: Value, spec: Value) -> Value {
    let mut spec = spec;
    spec["containers"] = json!([{ "name": "c", "image": "busybox" }]);
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "namespace": ns, "name": name, "labels": labels },
        "spec": spec,
        "status": { "phase": "Running", "podIP": "10.16.0.10" },
    })
}

fn subnet(name: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "kubeovn.io/v1",
        "kind": "Subnet",
        "metadata": { "name": name },
        "spec": { "cidrBlock": "10.16.0.0/16", "protocol": "IPv4" },
        "status": { "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" } }] },
    })
}

fn subnet_api_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubeovn.io", "v1", "Subnet"),
        "subnets",
    )
}

/// What a watcher has delivered so far, and the state it implies.
struct Seen<K> {
    state: BTreeMap<String, K>,
    init_buf: BTreeMap<String, K>,
    inits: usize,
    init_done: usize,
    applies: Vec<String>,
    deletes: Vec<String>,
    errors: Vec<String>,
}

impl<K> Default for Seen<K> {
    fn default() -> Self {
        Seen {
            state: BTreeMap::new(),
            init_buf: BTreeMap::new(),
            inits: 0,
            init_done: 0,
            applies: Vec::new(),
            deletes: Vec::new(),
            errors: Vec::new(),
        }
    }
}

impl<K> Seen<K> {
    fn names(&self) -> Vec<String> {
        self.state.keys().cloned().collect()
    }
}

fn key<K: Resource>(o: &K) -> String {
    format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any())
}

struct Watching<K> {
    seen: Arc<Mutex<Seen<K>>>,
    task: tokio::task::JoinHandle<()>,
}

impl<K> Drop for Watching<K> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<K> Watching<K> {
    fn with<R>(&self, f: impl FnOnce(&Seen<K>) -> R) -> R {
        f(&self.seen.lock().unwrap())
    }

    fn names(&self) -> Vec<String> {
        self.with(|s| s.names())
    }
}

fn spawn_watch<K, S>(stream: S) -> Watching<K>
where
    K: Resource + Clone + Send + 'static,
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
{
    let seen: Arc<Mutex<Seen<K>>> = Arc::default();
    let s2 = seen.clone();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            let mut s = s2.lock().unwrap();
            match ev {
                Ok(Event::Init) => {
                    s.inits += 1;
                    s.init_buf.clear();
                }
                Ok(Event::InitApply(o)) => {
                    s.init_buf.insert(key(&o), o);
                }
                Ok(Event::InitDone) => {
                    s.init_done += 1;
                    s.state = std::mem::take(&mut s.init_buf);
                }
                Ok(Event::Apply(o)) => {
                    s.applies.push(key(&o));
                    s.state.insert(key(&o), o);
                }
                Ok(Event::Delete(o)) => {
                    s.deletes.push(key(&o));
                    s.state.remove(&key(&o));
                }
                Err(e) => s.errors.push(e.to_string()),
            }
        }
    });
    Watching { seen, task }
}

fn watch_pods(api: Api<Pod>, cfg: watcher::Config) -> Watching<Pod> {
    spawn_watch(watcher(api, cfg).default_backoff())
}

use kube::runtime::watcher::watcher;

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_initial_sync_and_events() {
    bounded(async {
        let srv = ApiServer::start();
        srv.create(&pod("ns1", "a", json!({}), json!({ "nodeName": "n1" })));
        srv.create(&pod("ns2", "b", json!({}), json!({ "nodeName": "n2" })));
        let w = watch_pods(Api::all(srv.client()), watcher::Config::default());
        wait_for(T, "InitDone", || w.with(|s| s.init_done == 1)).await;
        assert_eq!(w.names(), names(&["ns1/a", "ns2/b"]));
        assert_eq!(srv.list_count("pods"), 1);
        wait_for(T, "watch open", || srv.open_watches("pods") == 1).await;

        // ADDED
        srv.create(&pod("ns1", "c", json!({}), json!({ "nodeName": "n1" })));
        wait_for(T, "c added", || w.with(|s| s.state.contains_key("ns1/c"))).await;

        // MODIFIED: annotate, then move to another node.
        srv.modify("pods", Some("ns1"), "a", |p| {
            p["metadata"]["annotations"] = json!({ "ovn.kubernetes.io/bgp": "true" });
        });
        wait_for(T, "a annotated", || {
            w.with(|s| {
                s.state["ns1/a"].annotations().get("ovn.kubernetes.io/bgp")
                    == Some(&"true".to_string())
            })
        })
        .await;
        srv.modify("pods", Some("ns1"), "a", |p| {
            p["spec"]["nodeName"] = json!("n2")
        });
        wait_for(T, "a moved", || {
            w.with(|s| s.state["ns1/a"].spec.as_ref().unwrap().node_name.as_deref() == Some("n2"))
        })
        .await;
        // Un-annotate.
        srv.modify("pods", Some("ns1"), "a", |p| {
            p["metadata"].as_object_mut().unwrap().remove("annotations");
        });
        wait_for(T, "a un-annotated", || {
            w.with(|s| s.state["ns1/a"].annotations().is_empty())
        })
        .await;

        // DELETED
        assert!(srv.delete("pods", Some("ns2"), "b").is_some());
        wait_for(T, "b deleted", || {
            w.with(|s| s.deletes == names(&["ns2/b"]))
        })
        .await;
        assert_eq!(w.names(), names(&["ns1/a", "ns1/c"]));

        // Every object the client saw carries the server's resourceVersion.
        let rv = srv.get("pods", Some("ns1"), "a").unwrap()["metadata"]["resourceVersion"].clone();
        w.with(|s| {
            assert_eq!(
                s.state["ns1/a"].metadata.resource_version.as_deref(),
                rv.as_str()
            )
        });
        assert_eq!(srv.list_count("pods"), 1, "no relist");
        w.with(|s| assert!(s.errors.is_empty(), "{:?}", s.errors));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subnet_dynamic_object_watch() {
    bounded(async {
        let srv = ApiServer::start();
        srv.create(&subnet("ovn-default", true));
        srv.create(&subnet("join", false));
        let ar = subnet_api_resource();
        let api: Api<DynamicObject> = Api::all_with(srv.client(), &ar);
        let w = spawn_watch(watcher(api, watcher::Config::default()).default_backoff());
        wait_for(T, "InitDone", || w.with(|s| s.init_done == 1)).await;
        assert_eq!(w.names(), names(&["/join", "/ovn-default"]));

        let ready = |s: &Seen<DynamicObject>, name: &str| {
            s.state
                .get(&format!("/{name}"))
                .map(|o| o.data["status"]["conditions"][0]["status"] == "True")
        };
        w.with(|s| assert_eq!(ready(s, "join"), Some(false)));
        // The subnet becomes ready.
        srv.modify("subnets", None, "join", |o| {
            o["status"]["conditions"][0]["status"] = json!("True");
        });
        wait_for(T, "join ready", || {
            w.with(|s| ready(s, "join") == Some(true))
        })
        .await;
        srv.apply(&subnet("vpc1-subnet", true));
        wait_for(T, "vpc1-subnet added", || {
            w.with(|s| s.state.contains_key("/vpc1-subnet"))
        })
        .await;
        srv.delete("subnets", None, "ovn-default");
        wait_for(T, "ovn-default deleted", || {
            w.with(|s| !s.state.contains_key("/ovn-default"))
        })
        .await;
        assert_eq!(srv.list_count("subnets"), 1);

        // The other two Kube-OVN CRDs answer on their real plurals.
        srv.create(&json!({
            "apiVersion": "kubeovn.io/v1", "kind": "IptablesEIP",
            "metadata": { "name": "eip1" },
            "spec": { "natGwDp": "gw1" },
            "status": { "ready": true, "ip": "172.18.0.10" },
        }));
        srv.create(&json!({
            "apiVersion": "kubeovn.io/v1", "kind": "VpcNatGateway",
            "metadata": { "name": "gw1" },
            "spec": { "vpc": "vpc1", "subnet": "vpc1-subnet" },
        }));
        for (kind, plural, name) in [
            ("IptablesEIP", "iptables-eips", "eip1"),
            ("VpcNatGateway", "vpc-nat-gateways", "gw1"),
        ] {
            let ar = ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("kubeovn.io", "v1", kind),
                plural,
            );
            let api: Api<DynamicObject> = Api::all_with(srv.client(), &ar);
            let list = api.list(&ListParams::default()).await.unwrap();
            assert_eq!(list.items.len(), 1);
            assert_eq!(list.items[0].name_any(), name);
            assert!(list.metadata.resource_version.is_some());
            assert_eq!(srv.list_count(plural), 1);
        }
        assert!(
            srv.request_log()
                .iter()
                .any(|l| l.starts_with("GET /apis/kubeovn.io/v1/iptables-eips"))
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_watch_resumes_without_relist() {
    bounded(async {
        let srv = ApiServer::start();
        srv.create(&pod("default", "a", json!({}), json!({})));
        let w = watch_pods(Api::all(srv.client()), watcher::Config::default());
        wait_for(T, "InitDone", || w.with(|s| s.init_done == 1)).await;
        wait_for(T, "watch open", || srv.open_watches("pods") == 1).await;
        let watches = srv.watch_count("pods");

        assert_eq!(srv.drop_watches(), 1);
        // Changes made while no watch is open are replayed from the resourceVersion on resume.
        srv.create(&pod("default", "b", json!({}), json!({})));
        srv.delete("pods", Some("default"), "a");
        wait_for(T, "resumed state", || w.names() == names(&["default/b"])).await;
        assert!(srv.watch_count("pods") > watches, "watched again");
        assert_eq!(srv.list_count("pods"), 1, "no relist");
        w.with(|s| {
            assert_eq!(s.init_done, 1);
            assert_eq!(s.deletes, names(&["default/a"]));
        });
        // The resumed watch asked for the resourceVersion the watcher had, not 0.
        let resumed = srv
            .request_log()
            .into_iter()
            .filter(|l| l.contains("watch=true"))
            .nth(1)
            .expect("second watch request");
        assert!(!resumed.contains("resourceVersion=0"), "{resumed}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_history_gets_410_and_relists() {
    bounded(async {
        let srv = ApiServer::start();
        srv.create(&pod("default", "a", json!({}), json!({})));
        srv.create(&pod("default", "b", json!({}), json!({})));
        let w = watch_pods(Api::all(srv.client()), watcher::Config::default());
        wait_for(T, "InitDone", || w.with(|s| s.init_done == 1)).await;
        wait_for(T, "watch open", || srv.open_watches("pods") == 1).await;

        srv.expire_history();
        srv.drop_watches();
        // Changes the watcher can only learn about by relisting (a deletion it never sees as an event).
        srv.delete("pods", Some("default"), "a");
        srv.create(&pod("default", "c", json!({}), json!({})));

        wait_for(T, "relisted", || w.with(|s| s.init_done == 2)).await;
        wait_for(T, "state after relist", || {
            w.names() == names(&["default/b", "default/c"])
        })
        .await;
        assert!(srv.gone_sent() >= 1);
        assert_eq!(srv.list_count("pods"), 2);
        w.with(|s| {
            assert!(
                s.errors
                    .iter()
                    .any(|e| e.contains("410") || e.contains("too old")),
                "{:?}",
                s.errors
            );
        });
        // The watch goes on after the relist.
        srv.create(&pod("default", "d", json!({}), json!({})));
        wait_for(T, "d added", || {
            w.with(|s| s.state.contains_key("default/d"))
        })
        .await;

        // The raw protocol: a watch from an expired resourceVersion answers 200 with an in-band
        // ERROR event carrying a 410 Status.
        let api: Api<Pod> = Api::all(srv.client());
        let mut stream = api
            .watch(&WatchParams::default(), "1")
            .await
            .unwrap()
            .boxed();
        match stream.try_next().await.unwrap() {
            Some(WatchEvent::Error(status)) => {
                assert_eq!(status.code, 410);
                assert_eq!(status.reason, "Expired");
            }
            other => panic!("expected a 410 ERROR event, got {other:?}"),
        }
        assert!(
            stream.try_next().await.unwrap().is_none(),
            "stream ends after ERROR"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_down_at_start_then_recovers() {
    bounded(async {
        let srv = ApiServer::start();
        srv.create(&pod("default", "a", json!({}), json!({})));
        srv.set_down(true);
        let w = watch_pods(Api::all(srv.client()), watcher::Config::default());
        wait_for(T, "watcher errors", || w.with(|s| !s.errors.is_empty())).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        w.with(|s| {
            assert_eq!(s.init_done, 0);
            assert!(s.state.is_empty());
        });
        assert_eq!(srv.list_count("pods"), 0);
        assert!(srv.refused_connections() >= 1);
        let errors = w.with(|s| s.errors.len());
        assert!(
            errors <= 4,
            "the watcher backs off: {errors} errors in ~1.5 s"
        );

        srv.set_down(false);
        wait_for(Duration::from_secs(45), "InitDone after recovery", || {
            w.with(|s| s.init_done == 1)
        })
        .await;
        assert_eq!(w.names(), names(&["default/a"]));
        assert_eq!(srv.list_count("pods"), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_while_watching_resumes_from_resource_version() {
    bounded(async {
        let srv = ApiServer::start();
        srv.create(&pod("default", "a", json!({}), json!({})));
        let w = watch_pods(Api::all(srv.client()), watcher::Config::default());
        wait_for(T, "InitDone", || w.with(|s| s.init_done == 1)).await;
        wait_for(T, "watch open", || srv.open_watches("pods") == 1).await;

        srv.set_down(true);
        srv.create(&pod("default", "b", json!({}), json!({})));
        tokio::time::sleep(Duration::from_millis(1000)).await;
        w.with(|s| assert!(!s.state.contains_key("default/b")));
        srv.set_down(false);
        wait_for(Duration::from_secs(45), "b after recovery", || {
            w.with(|s| s.state.contains_key("default/b"))
        })
        .await;
        assert_eq!(srv.list_count("pods"), 1, "resumed, not relisted");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_selector_filters_lists_and_watches() {
    bounded(async {
        const L: &str = "ovn.kubernetes.io/vpc-nat-gw-name";
        let srv = ApiServer::start();
        srv.create(&pod("kube-system", "gw1-0", json!({ L: "gw1" }), json!({})));
        srv.create(&pod("kube-system", "gw2-0", json!({ L: "gw2" }), json!({})));
        srv.create(&pod(
            "kube-system",
            "other",
            json!({ "app": "x" }),
            json!({}),
        ));
        let api: Api<Pod> = Api::namespaced(srv.client(), "kube-system");
        let cfg = watcher::Config::default().labels(&format!("{L}=gw1"));
        let w = watch_pods(api.clone(), cfg);
        wait_for(T, "InitDone", || w.with(|s| s.init_done == 1)).await;
        assert_eq!(w.names(), names(&["kube-system/gw1-0"]));
        wait_for(T, "watch open", || srv.open_watches("pods") == 1).await;

        // A pod that starts matching arrives as ADDED, one that stops matching as DELETED.
        srv.modify("pods", Some("kube-system"), "gw2-0", |p| {
            p["metadata"]["labels"][L] = json!("gw1")
        });
        srv.modify("pods", Some("kube-system"), "gw1-0", |p| {
            p["metadata"]["labels"][L] = json!("gw2")
        });
        srv.create(&pod("kube-system", "gw1-1", json!({ L: "gw1" }), json!({})));
        srv.create(&pod("kube-system", "gw3-0", json!({ L: "gw3" }), json!({})));
        srv.create(&pod(
            "default",
            "gw1-elsewhere",
            json!({ L: "gw1" }),
            json!({}),
        ));
        wait_for(T, "filtered state", || {
            w.names() == names(&["kube-system/gw1-1", "kube-system/gw2-0"])
        })
        .await;
        w.with(|s| assert_eq!(s.deletes, names(&["kube-system/gw1-0"])));

        // Set-based and existence selectors on plain lists.
        let lp = ListParams::default().labels(&format!("{L} in (gw2,gw3)"));
        let got: Vec<String> = api
            .list(&lp)
            .await
            .unwrap()
            .iter()
            .map(|p| p.name_any())
            .collect();
        assert_eq!(got, ["gw1-0", "gw3-0"]);
        let lp = ListParams::default().labels(&format!("!{L}"));
        let got: Vec<String> = api
            .list(&lp)
            .await
            .unwrap()
            .iter()
            .map(|p| p.name_any())
            .collect();
        assert_eq!(got, ["other"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_selector_host_network() {
    bounded(async {
        let srv = ApiServer::start();
        srv.create(&pod("default", "plain", json!({}), json!({})));
        srv.create(&pod(
            "default",
            "explicit",
            json!({}),
            json!({ "hostNetwork": false }),
        ));
        srv.create(&pod(
            "default",
            "host",
            json!({}),
            json!({ "hostNetwork": true }),
        ));
        let cfg = watcher::Config::default().fields("spec.hostNetwork=false");
        let w = watch_pods(Api::all(srv.client()), cfg);
        wait_for(T, "InitDone", || w.with(|s| s.init_done == 1)).await;
        assert_eq!(w.names(), names(&["default/explicit", "default/plain"]));
        wait_for(T, "watch open", || srv.open_watches("pods") == 1).await;

        srv.modify("pods", Some("default"), "plain", |p| {
            p["spec"]["hostNetwork"] = json!(true)
        });
        srv.modify("pods", Some("default"), "host", |p| {
            p["spec"]["hostNetwork"] = json!(false)
        });
        wait_for(T, "hostNetwork flip", || {
            w.names() == names(&["default/explicit", "default/host"])
        })
        .await;

        let api: Api<Pod> = Api::all(srv.client());
        let lp = ListParams::default().fields("metadata.name=explicit,spec.hostNetwork!=true");
        let got: Vec<String> = api
            .list(&lp)
            .await
            .unwrap()
            .iter()
            .map(|p| p.name_any())
            .collect();
        assert_eq!(got, ["explicit"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookmarks_advance_the_resume_point() {
    bounded(async {
        let srv = ApiServer::start();
        srv.set_bookmark_interval(Duration::from_millis(100));
        srv.create(&pod("default", "a", json!({}), json!({})));
        let w = watch_pods(Api::all(srv.client()), watcher::Config::default());
        wait_for(T, "InitDone", || w.with(|s| s.init_done == 1)).await;
        // Unrelated changes move the global resourceVersion; bookmarks carry it to the watcher.
        for i in 0..5 {
            srv.create(&json!({ "apiVersion": "v1", "kind": "Node", "metadata": { "name": format!("n{i}") } }));
        }
        let rv = srv.resource_version();
        let sent = srv.bookmarks_sent();
        wait_for(T, "two more bookmarks", || srv.bookmarks_sent() >= sent + 2).await;
        srv.drop_watches();
        wait_for(T, "resumed", || srv.watch_count("pods") == 2).await;
        let resumed = srv
            .request_log()
            .into_iter()
            .filter(|l| l.starts_with("GET /api/v1/pods") && l.contains("watch=true"))
            .nth(1)
            .unwrap();
        assert!(resumed.contains(&format!("resourceVersion={rv}")), "{resumed} (rv {rv})");
        assert!(resumed.contains("allowWatchBookmarks=true"));
        assert_eq!(srv.list_count("pods"), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfig_crud_discovery_and_events() {
    bounded(async {
        let srv = ApiServer::start();
        let kc = kube::config::Kubeconfig::read_from(srv.kubeconfig_path()).unwrap();
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        assert_eq!(cfg.cluster_url.to_string(), format!("{}/", srv.url()));
        let client = kube::Client::try_from(cfg).unwrap();

        let v = client.apiserver_version().await.unwrap();
        assert_eq!(v.major, "1");
        let groups = client.list_api_groups().await.unwrap();
        assert!(groups.groups.iter().any(|g| g.name == "kubeovn.io"));
        let core = client.list_core_api_versions().await.unwrap();
        assert_eq!(core.versions, ["v1"]);

        // CRUD on a cluster-scoped core resource.
        let nodes: Api<Node> = Api::all(client.clone());
        let n: Node = serde_json::from_value(json!({ "metadata": { "name": "node1" } })).unwrap();
        let created = nodes.create(&PostParams::default(), &n).await.unwrap();
        assert!(created.metadata.resource_version.is_some());
        assert!(created.metadata.uid.is_some());
        assert!(
            nodes.create(&PostParams::default(), &n).await.is_err(),
            "409 AlreadyExists"
        );
        let patched = nodes
            .patch(
                "node1",
                &PatchParams::default(),
                &Patch::Merge(json!({ "metadata": { "labels": { "zone": "a" } } })),
            )
            .await
            .unwrap();
        assert_eq!(patched.labels()["zone"], "a");
        assert_eq!(
            srv.get("nodes", None, "node1").unwrap()["metadata"]["labels"]["zone"],
            "a"
        );
        let mut stale = created.clone();
        stale.metadata.labels = Some([("zone".to_string(), "b".to_string())].into());
        assert!(
            nodes
                .replace("node1", &PostParams::default(), &stale)
                .await
                .is_err(),
            "409 Conflict"
        );
        let got = nodes.get("node1").await.unwrap();
        assert_eq!(got.metadata.uid, created.metadata.uid);
        nodes
            .delete("node1", &DeleteParams::default())
            .await
            .unwrap();
        assert!(nodes.get_opt("node1").await.unwrap().is_none());

        // Events through kube's Recorder (events.k8s.io/v1 POST, then PATCH for a repeat).
        let p = srv.create(&pod("default", "web", json!({}), json!({})));
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: p["metadata"]["uid"].as_str().map(str::to_string),
            ..Default::default()
        };
        let recorder = kube::runtime::events::Recorder::new(
            client.clone(),
            kube::runtime::events::Reporter {
                controller: "bgpgen".into(),
                instance: Some("test".into()),
            },
        );
        let ev = kube::runtime::events::Event {
            type_: kube::runtime::events::EventType::Normal,
            reason: "Announced".into(),
            note: Some("10.16.0.10/32".into()),
            action: "Announce".into(),
            secondary: None,
        };
        recorder.publish(&ev, &reference).await.unwrap();
        recorder.publish(&ev, &reference).await.unwrap();
        let evs = srv.recorded_events_about("web");
        assert_eq!(evs.len(), 1, "{evs:?}");
        assert_eq!(evs[0]["reason"], "Announced");
        assert_eq!(evs[0]["apiVersion"], "events.k8s.io/v1");
        assert!(
            evs[0]["series"]["count"].as_i64().unwrap_or(0) >= 2,
            "{:?}",
            evs[0]
        );

        // A core v1 Event POSTed directly.
        let core: Api<k8s_openapi::api::core::v1::Event> =
            Api::namespaced(client.clone(), "default");
        let e: k8s_openapi::api::core::v1::Event = serde_json::from_value(json!({
            "metadata": { "name": "web.1" },
            "involvedObject": { "kind": "Pod", "name": "web", "namespace": "default" },
            "reason": "Withdrawn",
            "type": "Normal",
        }))
        .unwrap();
        core.create(&PostParams::default(), &e).await.unwrap();
        let evs = srv.recorded_events_about("web");
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[1]["reason"], "Withdrawn");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_server_closes_everything() {
    bounded(async {
        let srv = ApiServer::start();
        let client = srv.client();
        let w = watch_pods(Api::all(client.clone()), watcher::Config::default());
        wait_for(T, "InitDone", || w.with(|s| s.init_done == 1)).await;
        wait_for(T, "watch open", || srv.open_watches("pods") == 1).await;
        let path = srv.kubeconfig_path().to_path_buf();
        let started = std::time::Instant::now();
        drop(srv);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!path.exists(), "kubeconfig removed with the server");
        let api: Api<Pod> = Api::all(client);
        let r =
            tokio::time::timeout(Duration::from_secs(10), api.list(&ListParams::default())).await;
        assert!(
            matches!(r, Ok(Err(_))),
            "requests fail once the server is gone"
        );
    })
    .await;
}

/// Sync tests (e.g. ones spawning the `bgpgen` binary) can start and drop the server too.
#[test]
fn usable_from_sync_code() {
    let srv = ApiServer::start();
    srv.create(&subnet("s1", true));
    let text = std::fs::read_to_string(srv.kubeconfig_path()).unwrap();
    assert!(text.contains(&srv.url()));
    assert_eq!(srv.list("subnets").len(), 1);
    assert_eq!(
        srv.list("subnets.kubeovn.io")[0]["metadata"]["resourceVersion"],
        "2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_list_initial_events() {
    bounded(async {
        let srv = ApiServer::start();
        srv.create(&pod("default", "a", json!({}), json!({})));
        srv.create(&pod("default", "b", json!({}), json!({})));
        let cfg = watcher::Config::default().streaming_lists();
        let w = watch_pods(Api::all(srv.client()), cfg);
        wait_for(T, "InitDone", || w.with(|s| s.init_done == 1)).await;
        assert_eq!(w.names(), names(&["default/a", "default/b"]));
        assert_eq!(
            srv.list_count("pods"),
            0,
            "no list: initial events came on the watch"
        );
        srv.delete("pods", Some("default"), "a");
        wait_for(T, "a deleted", || w.names() == names(&["default/b"])).await;

        // Expired history: the stream restarts with sendInitialEvents, again without a list.
        srv.expire_history();
        srv.drop_watches();
        srv.create(&pod("default", "c", json!({}), json!({})));
        wait_for(T, "c seen", || {
            w.names() == names(&["default/b", "default/c"])
        })
        .await;
        assert_eq!(srv.list_count("pods"), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_is_off_by_default_and_honoured_when_on() {
    bounded(async {
        let srv = ApiServer::start();
        let all: Vec<Value> = (0..7)
            .map(|i| {
                let host = i == 3;
                pod(
                    &format!("ns{}", i % 2),
                    &format!("p{i}"),
                    json!({}),
                    json!({ "hostNetwork": host }),
                )
            })
            .collect();
        assert_eq!(srv.apply_all(&all), 7);
        let api: Api<Pod> = Api::all(srv.client());
        let lp = ListParams::default()
            .limit(2)
            .fields("spec.hostNetwork=false");

        // Off (the default): one page whatever the limit, as the watch cache answers rv=0.
        let one = api.list(&lp).await.unwrap();
        assert_eq!(one.items.len(), 6);
        assert!(one.metadata.continue_.is_none());

        // On: pages of `limit`, filtered as before, every page with the first page's
        // resourceVersion; an object created between pages that sorts after the cursor is in a
        // later page (the double serves current objects, not etcd's snapshot).
        srv.set_paginate(true);
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        let mut rvs = Vec::new();
        loop {
            let mut p = lp.clone();
            if let Some(t) = token.take() {
                p = p.continue_token(&t);
            }
            let page = api.list(&p).await.unwrap();
            assert!(page.items.len() <= 2);
            seen.extend(page.items.iter().map(key));
            rvs.push(page.metadata.resource_version.clone());
            if seen.len() == 2 {
                srv.create(&pod("ns9", "late", json!({}), json!({})));
            }
            match page.metadata.continue_ {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        assert_eq!(
            seen,
            names(&[
                "ns0/p0", "ns0/p2", "ns0/p4", "ns0/p6", "ns1/p1", "ns1/p5", "ns9/late"
            ])
        );
        assert!(rvs.windows(2).all(|w| w[0] == w[1]), "{rvs:?}");

        // kube's watcher (pages of 500 by default) lists through the pages.
        let w = watch_pods(
            Api::all(srv.client()),
            watcher::Config::default().page_size(3),
        );
        wait_for(T, "InitDone", || w.with(|s| s.init_done == 1)).await;
        assert_eq!(w.names().len(), 8);
        assert_eq!(srv.list_count("pods"), 1 + 4 + 3);
    })
    .await;
}
