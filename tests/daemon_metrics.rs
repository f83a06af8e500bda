//! `/metrics`: gauges follow the console state and webhook outcomes are counted.
//! (Its own test binary: the metrics recorder is global to the process.)

mod daemon_support;

use daemon_support::*;
use tally::daemon::signature::sign_xero;
use tally::daemon::{DaemonConfig, Settings};
use tally_tui::state::{ActorRow, BudgetView};

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.trim().parse().ok())
    })
}

#[tokio::test]
async fn gauges_move_with_the_state_and_webhooks_are_counted() {
    let key = "metrics-key";
    let s = Settings {
        daemon: DaemonConfig {
            listen: "127.0.0.1:0".into(),
            xero_webhook_key: secret(key),
            ..Default::default()
        },
        ..Default::default()
    };
    let r = start(s).await;
    let scrape = || async {
        let res = r
            .http
            .get(format!("{}/metrics", r.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        res.text().await.unwrap()
    };

    r.engine.state.send_modify(|s| {
        s.actors = vec![ActorRow {
            name: "invoices".into(),
            queued: 5,
            in_flight: 2,
            dead: 1,
            ..Default::default()
        }];
        s.budget = BudgetView {
            minute_used: 10,
            minute_limit: 60,
            day_used: 1000,
            day_limit: 5000,
            ..Default::default()
        };
        s.discrepancies_open = 3;
        s.discrepancies_by_kind = [
            ("invoice_voided_in_xero".to_owned(), 2),
            ("unknown".to_owned(), 1),
        ]
        .into();
    });
    let mut text = String::new();
    for _ in 0..500 {
        text = scrape().await;
        if value(&text, "tally_queue_depth{actor=\"invoices\"}") == Some(5.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        value(&text, "tally_queue_depth{actor=\"invoices\"}"),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "tally_in_flight{actor=\"invoices\"}"),
        Some(2.0)
    );
    assert_eq!(value(&text, "tally_dead_letters"), Some(1.0));
    assert_eq!(
        value(&text, "tally_xero_budget_minute_remaining"),
        Some(50.0)
    );
    assert_eq!(
        value(&text, "tally_xero_budget_day_remaining"),
        Some(4000.0)
    );
    assert_eq!(
        value(&text, "tally_discrepancies_open{kind=\"all\"}"),
        Some(3.0)
    );
    assert_eq!(
        value(
            &text,
            "tally_discrepancies_open{kind=\"invoice_voided_in_xero\"}"
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "tally_discrepancies_open{kind=\"unknown\"}"),
        Some(1.0)
    );
    assert!(text.contains("# HELP tally_dead_letters"), "{text}");

    // The last voided-invoice discrepancy closes: its gauge drops to 0 rather than staying.
    r.engine.state.send_modify(|s| {
        s.discrepancies_open = 1;
        s.discrepancies_by_kind.remove("invoice_voided_in_xero");
    });
    eventually_async(|| async {
        let t = scrape().await;
        value(
            &t,
            "tally_discrepancies_open{kind=\"invoice_voided_in_xero\"}",
        ) == Some(0.0)
            && value(&t, "tally_discrepancies_open{kind=\"all\"}") == Some(1.0)
            && value(&t, "tally_discrepancies_open{kind=\"unknown\"}") == Some(1.0)
    })
    .await;

    r.engine.state.send_modify(|s| s.actors[0].queued = 9);
    eventually_async(|| async {
        value(&scrape().await, "tally_queue_depth{actor=\"invoices\"}") == Some(9.0)
    })
    .await;

    let secret_key = secrecy::SecretString::from(key.to_owned());
    let body =
        br#"{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"E"}"#.to_vec();
    let before = scrape().await;
    let accepted = "tally_webhooks_total{source=\"xero\",outcome=\"accepted\"}";
    let unauthorized = "tally_webhooks_total{source=\"xero\",outcome=\"unauthorized\"}";
    let post = |sig: String| {
        r.http
            .post(format!("{}/webhooks/xero", r.base))
            .header("x-xero-signature", sig)
            .body(body.clone())
            .send()
    };
    assert_eq!(
        post(sign_xero(&secret_key, &body))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(post("bogus".into()).await.unwrap().status().as_u16(), 401);
    assert_eq!(post("bogus".into()).await.unwrap().status().as_u16(), 401);
    let after = scrape().await;
    assert_eq!(
        value(&after, accepted).unwrap_or(0.0) - value(&before, accepted).unwrap_or(0.0),
        1.0,
        "{after}"
    );
    assert_eq!(
        value(&after, unauthorized).unwrap_or(0.0) - value(&before, unauthorized).unwrap_or(0.0),
        2.0
    );
}

async fn eventually_async<F, Fut>(mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..500 {
        if cond().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("condition never held");
}
