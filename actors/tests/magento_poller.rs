//! The order poller against a mock `GET /V1/orders` that implements the `updated_at gteq`
//! filter, the sort and Magento's paging (last page repeated past the end).

mod magento_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use magento_support::*;
use serde_json::{Value, json};
use tally_actors::magento::{CHANGED_FIELDS, MagentoClient, OrderCursor, OrderPoller, PolledOrder};
use tally_actors::model::order_fields::search_fields;

type Store = Arc<Mutex<Vec<(u64, String)>>>;

/// A hook run before each search is answered (to change the store mid-scan).
type Hook = Arc<dyn Fn(&Store, usize) + Send + Sync>;

async fn start(store: Store, hook: Option<Hook>) -> Mock {
    start_counting(store, hook, Arc::default()).await
}

/// Like [`start`], and counts the whole orders served (items with more than the keys).
async fn start_counting(store: Store, hook: Option<Hook>, whole_served: Arc<Mutex<usize>>) -> Mock {
    let calls = Arc::new(Mutex::new(0usize));
    Mock::start(move |rec: &Recorded| {
        assert_eq!(rec.oauth_ok, Some(true));
        assert_eq!(rec.path, "/rest/default/V1/orders");
        let n = {
            let mut c = calls.lock().unwrap();
            *c += 1;
            *c
        };
        if let Some(hook) = &hook {
            hook(&store, n);
        }
        let filter = |g: usize, part: &str| {
            rec.param(&format!(
                "searchCriteria[filter_groups][{g}][filters][0][{part}]"
            ))
            .map(str::to_string)
        };
        // `entity_id in (…)`: the poller fetching late orders whole.
        let ids: Option<Vec<u64>> = match filter(0, "field").as_deref() {
            Some("entity_id") => {
                assert_eq!(filter(0, "condition_type").as_deref(), Some("in"));
                Some(
                    filter(0, "value")
                        .unwrap()
                        .split(',')
                        .map(|v| v.parse().unwrap())
                        .collect(),
                )
            }
            _ => {
                assert_eq!(
                    rec.param("searchCriteria[sort_orders][0][field]"),
                    Some("updated_at")
                );
                assert_eq!(
                    rec.param("searchCriteria[sort_orders][0][direction]"),
                    Some("ASC")
                );
                assert_eq!(
                    rec.param("searchCriteria[sort_orders][1][field]"),
                    Some("entity_id")
                );
                None
            }
        };
        let from = match filter(0, "field").as_deref() {
            Some("updated_at") => {
                assert_eq!(filter(0, "condition_type").as_deref(), Some("gteq"));
                filter(0, "value")
            }
            _ => None,
        };
        let before = match filter(1, "field").as_deref() {
            Some("updated_at") => {
                assert_eq!(filter(1, "condition_type").as_deref(), Some("lt"));
                filter(1, "value")
            }
            _ => None,
        };
        // The key sweep asks for keys; every other read asks for the order projection (which
        // this mock's orders, keys and increment id only, already are).
        let keys_only = match rec.param("fields") {
            Some("items[entity_id,updated_at],total_count") => true,
            Some(CHANGED_FIELDS) => {
                // The forward read's key page: keys and the increment id, nothing whole.
                let (size, page) = (
                    rec.param("searchCriteria[page_size]").unwrap().parse::<usize>().unwrap(),
                    rec.param("searchCriteria[current_page]").unwrap().parse::<usize>().unwrap(),
                );
                let mut rows: Vec<(u64, String)> = store
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|(_, ts)| from_of(rec).as_ref().is_none_or(|f| ts >= f))
                    .cloned()
                    .collect();
                rows.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
                let total = rows.len();
                let page = page.min(total.div_ceil(size).max(1));
                let items: Vec<Value> = rows
                    .iter()
                    .skip((page - 1) * size)
                    .take(size)
                    .map(|(id, ts)| json!({"entity_id": id, "updated_at": ts, "increment_id": format!("{id:09}")}))
                    .collect();
                return Reply::json(200, json!({"items": items, "total_count": total}));
            }
            other => {
                assert_eq!(
                    other,
                    Some(search_fields().as_str()),
                    "order reads ask for the projection"
                );
                false
            }
        };
        let size: usize = rec
            .param("searchCriteria[page_size]")
            .unwrap()
            .parse()
            .unwrap();
        let page: usize = rec
            .param("searchCriteria[current_page]")
            .unwrap()
            .parse()
            .unwrap();
        let mut rows: Vec<(u64, String)> = store
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, ts)| from.as_ref().is_none_or(|f| ts >= f))
            .filter(|(_, ts)| before.as_ref().is_none_or(|b| ts < b))
            .filter(|(id, _)| ids.as_ref().is_none_or(|ids| ids.contains(id)))
            .cloned()
            .collect();
        rows.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        let total = rows.len();
        let last_page = total.div_ceil(size).max(1);
        let page = page.min(last_page);
        let items: Vec<Value> = rows
            .iter()
            .skip((page - 1) * size)
            .take(size)
            .map(|(id, ts)| {
                if keys_only {
                    json!({"entity_id": id, "updated_at": ts})
                } else {
                    json!({"entity_id": id, "updated_at": ts, "increment_id": format!("{id:09}")})
                }
            })
            .collect();
        if !keys_only {
            *whole_served.lock().unwrap() += items.len();
        }
        Reply::json(
            200,
            json!({"items": items, "search_criteria": {}, "total_count": total}),
        )
    })
    .await
}

/// The `updated_at gteq` bound of a forward read, if any.
fn from_of(rec: &Recorded) -> Option<String> {
    let p = |part: &str| {
        rec.param(&format!(
            "searchCriteria[filter_groups][0][filters][0][{part}]"
        ))
    };
    (p("field") == Some("updated_at")).then(|| p("value").unwrap().to_owned())
}

fn poller(mock: &Mock, page_size: u32) -> OrderPoller {
    let client = MagentoClient::new(&mock.oauth_config()).unwrap();
    OrderPoller::new(client, Duration::from_secs(120)).with_page_size(page_size)
}

/// The ids in the emitted text, checked against each order's key.
fn ids(orders: &[PolledOrder]) -> Vec<u64> {
    orders
        .iter()
        .map(|o| {
            let id = o.value()["entity_id"].as_u64().unwrap();
            assert_eq!(id, o.entity_id());
            id
        })
        .collect()
}

fn put(store: &Store, id: u64, ts: &str) {
    let mut s = store.lock().unwrap();
    s.retain(|(i, _)| *i != id);
    s.push((id, ts.to_string()));
}

#[tokio::test]
async fn first_poll_reads_everything_and_a_quiet_store_gives_nothing() {
    let store: Store = Arc::default();
    for i in 1..=5 {
        put(&store, i, &format!("2024-05-01 10:00:0{i}"));
    }
    let mock = start(store.clone(), None).await;
    let p = poller(&mock, 2);
    let (orders, cursor) = p.poll(&OrderCursor::default()).await.unwrap();
    assert_eq!(ids(&orders), vec![1, 2, 3, 4, 5]);
    assert_eq!(cursor.updated_at, "2024-05-01 10:00:05");
    assert_eq!(cursor.seen.len(), 5);

    let before = mock.requests().len();
    let (again, cursor2) = p.poll(&cursor).await.unwrap();
    assert!(
        again.is_empty(),
        "re-read inside the overlap, all de-duplicated"
    );
    assert_eq!(cursor2, cursor);
    let first = mock.requests()[before].clone();
    assert_eq!(
        first.param("searchCriteria[filter_groups][0][filters][0][value]"),
        Some("2024-05-01 09:58:05"),
        "cursor minus the 120 s overlap"
    );
}

#[tokio::test]
async fn orders_sharing_the_cursor_second_and_late_commits_are_not_lost() {
    let store: Store = Arc::default();
    put(&store, 1, "2024-05-01 10:00:00");
    put(&store, 2, "2024-05-01 10:00:10");
    let mock = start(store.clone(), None).await;
    let p = poller(&mock, 100);
    let (first, cursor) = p.poll(&OrderCursor::default()).await.unwrap();
    assert_eq!(ids(&first), vec![1, 2]);

    // Same second as the cursor, and an order stamped earlier whose transaction committed
    // only now, and a re-save of order 1.
    put(&store, 3, "2024-05-01 10:00:10");
    put(&store, 4, "2024-05-01 10:00:05");
    put(&store, 1, "2024-05-01 10:00:11");
    let (second, cursor) = p.poll(&cursor).await.unwrap();
    let mut got = ids(&second);
    got.sort();
    assert_eq!(got, vec![1, 3, 4]);
    assert_eq!(cursor.updated_at, "2024-05-01 10:00:11");

    let (third, _) = p.poll(&cursor).await.unwrap();
    assert!(third.is_empty(), "nothing emitted twice: {third:?}");
}

#[tokio::test]
async fn a_run_of_equal_timestamps_longer_than_a_page_is_read_once() {
    let store: Store = Arc::default();
    for i in 1..=7 {
        put(&store, i, "2024-05-01 10:00:00");
    }
    put(&store, 8, "2024-05-01 10:00:01");
    let mock = start(store.clone(), None).await;
    let (orders, cursor) = poller(&mock, 3)
        .poll(&OrderCursor::default())
        .await
        .unwrap();
    assert_eq!(ids(&orders), vec![1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(cursor.updated_at, "2024-05-01 10:00:01");
    assert!(
        mock.requests().len() < 10,
        "bounded paging: {}",
        mock.requests().len()
    );
}

#[tokio::test]
async fn an_order_moving_to_the_end_mid_scan_does_not_hide_its_neighbours() {
    let store: Store = Arc::default();
    for i in 1..=9 {
        put(&store, i, &format!("2024-05-01 10:00:0{i}"));
    }
    // Right after the first page was served, order 2 is saved again: with offset paging,
    // every later row would shift left by one and order 4 would be skipped.
    let hook: Hook = Arc::new(|store: &Store, call: usize| {
        if call == 2 {
            put(store, 2, "2024-05-01 10:00:30");
        }
    });
    let mock = start(store.clone(), Some(hook)).await;
    let (orders, _) = poller(&mock, 3)
        .poll(&OrderCursor::default())
        .await
        .unwrap();
    let mut got = ids(&orders);
    got.sort();
    got.dedup();
    assert_eq!(got, (1..=9).collect::<Vec<u64>>());
}

#[tokio::test]
async fn max_per_poll_slices_a_backlog_without_loss_or_repeats() {
    let store: Store = Arc::default();
    for i in 1..=10 {
        put(&store, i, &format!("2024-05-01 10:00:{i:02}"));
    }
    let mock = start(store.clone(), None).await;
    let p = poller(&mock, 3).with_max_per_poll(3);
    let mut cursor = OrderCursor::default();
    let mut all = Vec::new();
    for _ in 0..10 {
        let (orders, next) = p.poll(&cursor).await.unwrap();
        // The cap is checked after whole pages: at most cap + page - 1 per slice.
        assert!(orders.len() < 3 + 3, "slice of {}", orders.len());
        all.extend(ids(&orders));
        cursor = next;
        if orders.is_empty() {
            break;
        }
    }
    assert_eq!(all, (1..=10).collect::<Vec<u64>>());
}

/// Orders the engine itself just re-saved sit in the overlap window on every later poll:
/// they are swept by key only, and only a late commit among them is fetched whole.
#[tokio::test]
async fn the_overlap_window_is_swept_by_key_and_only_late_orders_are_fetched_whole() {
    let store: Store = Arc::default();
    for i in 1..=50 {
        put(&store, i, &format!("2024-05-01 10:00:{i:02}"));
    }
    let whole = Arc::new(Mutex::new(0usize));
    let mock = start_counting(store.clone(), None, whole.clone()).await;
    let p = poller(&mock, 20);
    let (first, cursor) = p.poll(&OrderCursor::default()).await.unwrap();
    assert_eq!(first.len(), 50);
    let after_first = *whole.lock().unwrap();

    // Nothing new: the 50 orders inside the window are not transferred whole again.
    let (again, cursor) = p.poll(&cursor).await.unwrap();
    assert!(again.is_empty());
    // The forward read re-reads only the cursor's own second.
    assert!(
        *whole.lock().unwrap() - after_first <= 1,
        "whole orders re-read: {}",
        *whole.lock().unwrap() - after_first
    );

    // A late commit stamped inside the window: found, fetched whole, emitted once.
    put(&store, 99, "2024-05-01 10:00:30");
    let before = *whole.lock().unwrap();
    let (late, cursor) = p.poll(&cursor).await.unwrap();
    assert_eq!(ids(&late), vec![99]);
    assert_eq!(
        late[0].value()["increment_id"],
        json!("000000099"),
        "emitted whole"
    );
    assert!(*whole.lock().unwrap() - before <= 2);
    let (none, _) = p.poll(&cursor).await.unwrap();
    assert!(none.is_empty());
}

/// The forward read asks for keys first and reads whole only what the caller wants; the
/// cursor still moves past the rest, so they are not offered again.
#[tokio::test]
async fn unwanted_changes_move_the_cursor_without_being_read_whole() {
    let store: Store = Arc::default();
    for i in 1..=30 {
        put(&store, i, &format!("2024-05-01 10:{:02}:00", i));
    }
    let whole = Arc::new(Mutex::new(0usize));
    let mock = start_counting(store.clone(), None, whole.clone()).await;
    let p = poller(&mock, 7);
    let offered = Arc::new(Mutex::new(Vec::new()));
    let (got, cursor) = p
        .poll_wanted(&OrderCursor::default(), |changed| {
            let offered = offered.clone();
            async move {
                offered
                    .lock()
                    .unwrap()
                    .extend(changed.iter().map(|c| c.entity_id));
                assert!(changed.iter().all(|c| c.increment_id.is_some()));
                changed
                    .into_iter()
                    .map(|c| c.entity_id)
                    .filter(|id| id % 3 == 0)
                    .collect()
            }
        })
        .await
        .unwrap();
    assert_eq!(
        ids(&got),
        (1..=30).filter(|i| i % 3 == 0).collect::<Vec<u64>>()
    );
    assert_eq!(
        *whole.lock().unwrap(),
        10,
        "only the wanted orders were read whole"
    );
    assert_eq!(
        *offered.lock().unwrap(),
        (1..=30).collect::<Vec<u64>>(),
        "each offered once"
    );
    assert_eq!(cursor.updated_at, "2024-05-01 10:30:00");
    let (again, _) = p
        .poll_wanted(&cursor, |c| async move {
            c.into_iter().map(|c| c.entity_id).collect()
        })
        .await
        .unwrap();
    assert!(
        again.is_empty(),
        "passed-over orders are not offered again: {:?}",
        ids(&again)
    );
}

/// Changes nobody wants still end a poll after ten times its cap in keys, so the cursor
/// moves through them in committed slices, and nothing is skipped or offered twice.
#[tokio::test]
async fn a_long_run_of_unwanted_changes_is_read_in_slices() {
    let store: Store = Arc::default();
    for i in 1..=40 {
        put(&store, i, &format!("2024-05-01 10:{:02}:00", i));
    }
    let mock = start(store.clone(), None).await;
    let p = poller(&mock, 5).with_max_per_poll(2);
    let offered = Arc::new(Mutex::new(Vec::new()));
    let mut cursor = OrderCursor::default();
    let mut polls = 0;
    loop {
        let (got, next) = p
            .poll_wanted(&cursor, |changed| {
                let offered = offered.clone();
                async move {
                    let ids = changed.iter().map(|c| c.entity_id);
                    offered.lock().unwrap().extend(ids);
                    std::collections::HashSet::new()
                }
            })
            .await
            .unwrap();
        assert!(got.is_empty());
        polls += 1;
        if next == cursor {
            break;
        }
        cursor = next;
        assert!(polls < 20, "the cursor keeps moving");
    }
    assert!(
        polls >= 2,
        "read in slices of about 20 keys, not in one poll ({polls})"
    );
    let seen = offered.lock().unwrap().clone();
    assert_eq!(
        seen,
        (1..=40).collect::<Vec<u64>>(),
        "each offered once, in order"
    );
    assert_eq!(cursor.updated_at, "2024-05-01 10:40:00");
}

#[tokio::test]
async fn seen_pairs_are_bounded_to_the_overlap_window() {
    let store: Store = Arc::default();
    put(&store, 1, "2024-05-01 10:00:00");
    put(&store, 2, "2024-05-01 10:01:00");
    let mock = start(store.clone(), None).await;
    let p = poller(&mock, 50);
    let (_, cursor) = p.poll(&OrderCursor::default()).await.unwrap();
    assert_eq!(cursor.seen.len(), 2);
    put(&store, 3, "2024-05-01 10:05:00");
    let (orders, cursor) = p.poll(&cursor).await.unwrap();
    assert_eq!(ids(&orders), vec![3]);
    assert_eq!(cursor.seen, vec![(3, "2024-05-01 10:05:00".to_string())]);
}

#[tokio::test]
async fn a_cursor_with_a_start_date_filters_history_and_a_bad_one_is_an_error() {
    let store: Store = Arc::default();
    put(&store, 1, "2023-01-01 00:00:00");
    put(&store, 2, "2024-05-01 10:00:00");
    let mock = start(store.clone(), None).await;
    let p = poller(&mock, 50);
    let (orders, _) = p
        .poll(&OrderCursor::starting_at("2024-05-01 00:00:00"))
        .await
        .unwrap();
    assert_eq!(ids(&orders), vec![2]);
    let err = p
        .poll(&OrderCursor::starting_at("yesterday"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("yesterday"), "{err}");
}

#[test]
fn cursor_round_trips_through_json() {
    let cursor = OrderCursor {
        updated_at: "2024-05-01 10:00:00".into(),
        seen: vec![(7, "2024-05-01 10:00:00".into())],
    };
    let json = serde_json::to_string(&cursor).unwrap();
    assert_eq!(serde_json::from_str::<OrderCursor>(&json).unwrap(), cursor);
}
