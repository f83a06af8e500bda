//! Typed errors of the Magento client, and Magento's error-message rendering.
//!
//! Magento sends `{"message": "... %1 ..." | "... %name ...", "parameters": [..] | {..}}` and
//! leaves substitution to the client (magento.md §9); an operator should read the finished
//! sentence, so it is rendered here. No variant ever carries a credential: requests are
//! identified by method and path (never the query or headers), and bodies echoed back by a
//! server are scrubbed of the client's secrets before they become a message.

use std::time::Duration;

use serde_json::Value;

/// What a caller may do after a failure: the same three cases as the engine's retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Nothing happened on the server (or the operation is safe to repeat): try again later.
    Retriable,
    /// Trying again will fail the same way (bad input, missing entity, no permission).
    Permanent,
    /// The request may or may not have been applied: look it up by natural key before
    /// repeating a non-idempotent write.
    Ambiguous,
}

#[derive(Debug, thiserror::Error)]
pub enum MagentoError {
    #[error("magento config: {0}")]
    Config(String),

    /// Magento answered with a non-success status.
    #[error("magento {method} {path} returned HTTP {status}: {message}")]
    Api {
        status: u16,
        method: String,
        path: String,
        /// Magento's message with its placeholders substituted.
        message: String,
        /// From `Retry-After`, when the server sent one.
        retry_after: Option<Duration>,
    },

    /// No HTTP response: connection refused, reset, timed out.
    #[error("magento {method} {path}: {reason}")]
    Transport {
        method: String,
        path: String,
        reason: String,
        /// False only when the connection was never established, so the server cannot have
        /// seen the request.
        maybe_sent: bool,
    },

    /// A success status with a body that is not what the endpoint documents.
    #[error("magento {method} {path}: unexpected response body: {reason}")]
    Decode {
        method: String,
        path: String,
        reason: String,
    },
}

impl MagentoError {
    /// The HTTP status, when Magento answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            MagentoError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// 404: Magento's `NoSuchEntityException` (or an unknown route).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// How the failure should be handled by a caller whose request was *not* idempotent.
    /// For idempotent requests, [`FailureKind::Ambiguous`] may be treated as retriable.
    pub fn kind(&self) -> FailureKind {
        match self {
            MagentoError::Config(_) => FailureKind::Permanent,
            // Backpressure is answered before the request is processed.
            MagentoError::Api { status: 429, .. } => FailureKind::Retriable,
            MagentoError::Api { status, .. } if *status >= 500 => FailureKind::Ambiguous,
            MagentoError::Api { status: 408, .. } => FailureKind::Ambiguous,
            MagentoError::Api { .. } => FailureKind::Permanent,
            MagentoError::Transport {
                maybe_sent: false, ..
            } => FailureKind::Retriable,
            MagentoError::Transport { .. } => FailureKind::Ambiguous,
            MagentoError::Decode { .. } => FailureKind::Ambiguous,
        }
    }

    /// The delay the server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            MagentoError::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Substitutes `%1`, `%2`, … (1-based positions in a list, or keys `"1"` in an object) and
/// `%name` (object keys) in a Magento message. Unknown placeholders are left as they are so
/// nothing is silently dropped.
pub fn render_message(message: &str, parameters: Option<&Value>) -> String {
    let Some(parameters) = parameters else {
        return message.to_string();
    };
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let name_len = after
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
            .map(|(i, _)| i)
            .unwrap_or(after.len());
        let name = &after[..name_len];
        match lookup(parameters, name) {
            Some(value) if !name.is_empty() => out.push_str(&value),
            _ => {
                out.push('%');
                out.push_str(name);
            }
        }
        rest = &after[name_len..];
    }
    out.push_str(rest);
    out
}

fn lookup(parameters: &Value, name: &str) -> Option<String> {
    let value = match parameters {
        Value::Array(list) => {
            let index: usize = name.parse().ok()?;
            list.get(index.checked_sub(1)?)?
        }
        Value::Object(map) => map.get(name)?,
        _ => return None,
    };
    Some(match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    })
}

/// Renders a Magento error body (`message`, `parameters`, and any nested `errors[]`) into one
/// sentence; a non-JSON body (a proxy's HTML page, say) is reduced to a short excerpt.
pub fn render_error_body(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(map)) if map.contains_key("message") => {
            let main = render_message(
                map.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                map.get("parameters"),
            );
            let nested: Vec<String> = map
                .get("errors")
                .and_then(Value::as_array)
                .map(|errors| {
                    errors
                        .iter()
                        .filter_map(|e| {
                            let msg = e.get("message")?.as_str()?;
                            Some(render_message(msg, e.get("parameters")))
                        })
                        .filter(|m| *m != main)
                        .collect()
                })
                .unwrap_or_default();
            if nested.is_empty() {
                main
            } else {
                format!("{main} ({})", nested.join("; "))
            }
        }
        _ => {
            let trimmed = body.trim();
            let excerpt: String = trimmed.chars().take(200).collect();
            if excerpt.is_empty() {
                "(empty body)".to_string()
            } else if excerpt.len() < trimmed.len() {
                format!("{excerpt}…")
            } else {
                excerpt
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn positional_and_named_placeholders() {
        assert_eq!(
            render_message("Invalid product data: %1", Some(&json!(["bad set"]))),
            "Invalid product data: bad set"
        );
        assert_eq!(
            render_message(
                "The consumer isn't authorized to access %resources.",
                Some(&json!({"resources": "Magento_Sales::actions_view"}))
            ),
            "The consumer isn't authorized to access Magento_Sales::actions_view."
        );
        assert_eq!(
            render_message("%1 of %2, not %10", Some(&json!([1, "two"]))),
            "1 of two, not %10"
        );
        assert_eq!(
            render_message("100% sure %fieldName", Some(&json!({"fieldName": "sku"}))),
            "100% sure sku"
        );
        assert_eq!(render_message("no params %1", None), "no params %1");
    }

    #[test]
    fn nested_errors_and_non_json_bodies() {
        let body = json!({
            "message": "Validation failed",
            "errors": [
                {"message": "\"%fieldName\" is required.", "parameters": {"fieldName": "sku"}},
                {"message": "Validation failed"}
            ]
        })
        .to_string();
        assert_eq!(
            render_error_body(&body),
            "Validation failed (\"sku\" is required.)"
        );
        assert_eq!(
            render_error_body("<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
        assert_eq!(render_error_body(""), "(empty body)");
        assert!(render_error_body(&"x".repeat(500)).ends_with('…'));
    }

    #[test]
    fn failure_kinds() {
        let api = |status| MagentoError::Api {
            status,
            method: "GET".into(),
            path: "/V1/orders".into(),
            message: String::new(),
            retry_after: None,
        };
        assert_eq!(api(429).kind(), FailureKind::Retriable);
        assert_eq!(api(503).kind(), FailureKind::Ambiguous);
        assert_eq!(api(400).kind(), FailureKind::Permanent);
        assert!(api(404).is_not_found());
        let refused = MagentoError::Transport {
            method: "POST".into(),
            path: "/x".into(),
            reason: "refused".into(),
            maybe_sent: false,
        };
        assert_eq!(refused.kind(), FailureKind::Retriable);
    }
}
