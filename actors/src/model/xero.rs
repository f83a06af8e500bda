//! Xero Accounting wire bodies (PascalCase), for what we send and what we read back.
//!
//! Money is `Decimal` written as a JSON number with exactly its digits (never through `f64`);
//! `None` fields are left out so a POST never blanks a field we did not mean to touch. Unknown
//! response fields are ignored: Xero returns far more than the engine needs.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

mod amount {
    pub use rust_decimal::serde::arbitrary_precision_option as opt;
}

/// How `UnitAmount` relates to tax on every line of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum LineAmountTypes {
    #[default]
    Exclusive,
    Inclusive,
    NoTax,
}

/// One validation message in a `summarizeErrors=false` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ValidationError {
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ContactRef {
    #[serde(rename = "ContactID", skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct InvoiceRef {
    #[serde(rename = "InvoiceID", skip_serializing_if = "Option::is_none")]
    pub invoice_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice_number: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CreditNoteRef {
    #[serde(rename = "CreditNoteID", skip_serializing_if = "Option::is_none")]
    pub credit_note_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_note_number: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct AccountRef {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(rename = "AccountID", skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Address {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_line1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_line2: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Contact {
    #[serde(rename = "ContactID", skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_address: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Address>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_validation_errors: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_errors: Vec<ValidationError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct LineItem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, with = "amount::opt", skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Decimal>,
    #[serde(default, with = "amount::opt", skip_serializing_if = "Option::is_none")]
    pub unit_amount: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax_type: Option<String>,
    #[serde(default, with = "amount::opt", skip_serializing_if = "Option::is_none")]
    pub tax_amount: Option<Decimal>,
    #[serde(default, with = "amount::opt", skip_serializing_if = "Option::is_none")]
    pub line_amount: Option<Decimal>,
    #[serde(default, with = "amount::opt", skip_serializing_if = "Option::is_none")]
    pub discount_rate: Option<Decimal>,
    #[serde(default, with = "amount::opt", skip_serializing_if = "Option::is_none")]
    pub discount_amount: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Invoice {
    #[serde(rename = "InvoiceID", skip_serializing_if = "Option::is_none")]
    pub invoice_id: Option<String>,
    #[serde(rename = "Type")]
    pub kind: String,
    pub contact: ContactRef,
    #[serde(default)]
    pub line_items: Vec<LineItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_date: Option<String>,
    #[serde(default)]
    pub line_amount_types: LineAmountTypes,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency_code: Option<String>,
    #[serde(default, with = "amount::opt", skip_serializing_if = "Option::is_none")]
    pub currency_rate: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, with = "amount::opt", skip_serializing_if = "Option::is_none")]
    pub sub_total: Option<Decimal>,
    #[serde(default, with = "amount::opt", skip_serializing_if = "Option::is_none")]
    pub total_tax: Option<Decimal>,
    #[serde(default, with = "amount::opt", skip_serializing_if = "Option::is_none")]
    pub total: Option<Decimal>,
    #[serde(default, with = "amount::opt", skip_serializing_if = "Option::is_none")]
    pub amount_due: Option<Decimal>,
    #[serde(default, with = "amount::opt", skip_serializing_if = "Option::is_none")]
    pub amount_paid: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_errors: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_errors: Vec<ValidationError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Payment {
    #[serde(rename = "PaymentID", skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice: Option<InvoiceRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_note: Option<CreditNoteRef>,
    pub account: AccountRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, with = "amount::opt", skip_serializing_if = "Option::is_none")]
    pub amount: Option<Decimal>,
    #[serde(default, with = "amount::opt", skip_serializing_if = "Option::is_none")]
    pub currency_rate: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_validation_errors: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_errors: Vec<ValidationError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CreditNote {
    #[serde(rename = "CreditNoteID", skip_serializing_if = "Option::is_none")]
    pub credit_note_id: Option<String>,
    #[serde(rename = "Type")]
    pub kind: String,
    pub contact: ContactRef,
    #[serde(default)]
    pub line_items: Vec<LineItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default)]
    pub line_amount_types: LineAmountTypes,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_note_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency_code: Option<String>,
    #[serde(default, with = "amount::opt", skip_serializing_if = "Option::is_none")]
    pub currency_rate: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, with = "amount::opt", skip_serializing_if = "Option::is_none")]
    pub total: Option<Decimal>,
    #[serde(default, with = "amount::opt", skip_serializing_if = "Option::is_none")]
    pub remaining_credit: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_errors: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_errors: Vec<ValidationError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Allocation {
    #[serde(rename = "AllocationID", skip_serializing_if = "Option::is_none")]
    pub allocation_id: Option<String>,
    pub invoice: InvoiceRef,
    #[serde(default, with = "amount::opt", skip_serializing_if = "Option::is_none")]
    pub amount: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn money_serializes_as_exact_numbers_and_none_is_omitted() {
        let line = LineItem {
            quantity: Some(Decimal::from_str("3").unwrap()),
            unit_amount: Some(Decimal::from_str("0.1000").unwrap()),
            tax_amount: Some(Decimal::from_str("0.06").unwrap()),
            ..Default::default()
        };
        let text = serde_json::to_string(&line).unwrap();
        assert_eq!(
            text,
            r#"{"Quantity":3,"UnitAmount":0.1000,"TaxAmount":0.06}"#
        );
        let back: LineItem = serde_json::from_str(&text).unwrap();
        assert_eq!(back, line);
    }

    #[test]
    fn reads_a_xero_response_with_extra_fields() {
        let json = r#"{"InvoiceID":"abc","Type":"ACCREC","Contact":{"ContactID":"c1","Name":"Jo"},
            "LineItems":[{"LineItemID":"x","Quantity":1.0,"UnitAmount":19.99,"LineAmount":19.99,"TaxAmount":4.00}],
            "LineAmountTypes":"Inclusive","Total":19.99,"TotalTax":4.00,"SubTotal":15.99,"Status":"AUTHORISED",
            "UpdatedDateUTC":"/Date(1518685950940+0000)/","ValidationErrors":[{"Message":"bad"}],"HasErrors":true}"#;
        let inv: Invoice = serde_json::from_str(json).unwrap();
        assert_eq!(inv.total, Some(Decimal::from_str("19.99").unwrap()));
        assert_eq!(inv.line_amount_types, LineAmountTypes::Inclusive);
        assert_eq!(inv.contact.contact_id.as_deref(), Some("c1"));
        assert_eq!(inv.validation_errors[0].message, "bad");
    }
}
