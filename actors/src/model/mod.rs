//! Wire and internal types: money, the validated Magento order, the catalogue facts an order
//! needs, and the Xero request/response bodies.
//!
//! Orders are parsed from a JSON tree by hand rather than derived, so that every rejection
//! can name the exact field (`items[2].price`) for the dead-letter queue. The tree is a
//! `serde_json::Value` or the borrowed [`Json`] a stage reads a stored record into; the
//! parser sees either through [`JsonView`].

pub mod catalogue;
pub mod error;
pub mod json;
pub mod json_view;
pub mod money;
pub mod order;
pub mod order_fields;
pub mod xero;

pub use catalogue::{Catalogue, ProductFacts};
pub use error::RecordError;
pub use json::Json;
pub use json_view::{JsonView, Kind};
pub use money::{MoneyError, parse_money, round2};
pub use order::{Address, Currency, Customer, Order, OrderLine, Payment as OrderPayment, Shipping};
