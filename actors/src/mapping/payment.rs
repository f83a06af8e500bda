//! Order → Xero payment against its invoice, into the bank account mapped for the Magento
//! payment method.

use rust_decimal::Decimal;

use super::invoice::currency_rate;
use super::rules::MappingRules;
use crate::model::error::RecordError;
use crate::model::money::cents;
use crate::model::order::Order;
use crate::model::xero::{AccountRef, InvoiceRef, Payment};

/// The payment for what Magento says was paid, or `None` when nothing is paid yet.
///
/// The rate is sent for a foreign-currency order on the assumption that the store's base
/// currency is the organisation's (the usual set-up; [`invoice_for`](super::invoice::invoice_for)
/// handles the general case with the organisation's base in hand).
pub fn payment_for(
    order: &Order,
    invoice_id: &str,
    rules: &MappingRules,
) -> Result<Option<Payment>, RecordError> {
    let err = |field: &str, message: String| RecordError::new(order.record(), field, message);
    let Some(amount) = order.payment.amount_paid.filter(|a| *a > Decimal::ZERO) else {
        return Ok(None);
    };
    if amount > order.grand_total {
        return Err(err(
            "payment.amount_paid",
            format!(
                "amount paid {amount} exceeds the grand total {}",
                order.grand_total
            ),
        ));
    }
    let method = order
        .payment
        .method
        .as_deref()
        .ok_or_else(|| err("payment.method", "missing".into()))?;
    let account = rules.payments.get(method).ok_or_else(|| {
        let known: Vec<&str> = rules.payments.keys().map(String::as_str).collect();
        err(
            "payment.method",
            format!(
                "payment method {method:?} is not in mapping.payments (mapped: {})",
                known.join(", ")
            ),
        )
    })?;
    Ok(Some(Payment {
        invoice: Some(InvoiceRef {
            invoice_id: Some(invoice_id.to_owned()),
            invoice_number: None,
        }),
        account: AccountRef {
            code: Some(account.clone()),
            account_id: None,
        },
        date: Some(order.date().format("%Y-%m-%d").to_string()),
        amount: Some(cents(amount)),
        currency_rate: currency_rate(order, &order.currency.base),
        reference: Some(
            order
                .payment
                .last_trans_id
                .clone()
                .unwrap_or_else(|| order.increment_id.clone()),
        ),
        ..Default::default()
    }))
}
