//! The Magento 2 REST client the engine uses: authentication (OAuth 1.0a integration
//! signing, bearer, admin token), `searchCriteria` paging, typed errors with Magento's
//! messages rendered, retries through the shared [`crate::retry`] policy and the link's
//! [`crate::budget::MagentoBudget`], and the incremental [`OrderPoller`].

mod auth;
mod bulk;
mod client;
mod config;
mod criteria;
mod encode;
mod error;
pub mod oauth1;
mod polled_order;
mod poller;

pub use auth::ADMIN_TOKEN_TTL;
pub use bulk::{BulkAccepted, COMMENT_TOPIC, OperationState};
pub use client::{MagentoClient, SearchPage, SourceItem};
pub use config::{AuthMode, MAX_PAGE_SIZE, MagentoConfig};
pub use criteria::{Condition, Direction, Filter, SearchCriteria};
pub use encode::{query_string, rfc3986};
pub use error::{FailureKind, MagentoError, render_error_body, render_message};
pub use polled_order::PolledOrder;
pub use poller::{CHANGED_FIELDS, ChangedOrder, OrderCursor, OrderPoller, order_entity_id};
