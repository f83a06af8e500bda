//! The stable names of discrepancy kinds: part of each stored discrepancy so `/metrics`,
//! alerts, the console and the report group them without parsing keys or wording. They are a
//! contract with dashboards and must not change once released.

/// An invoice tally posted was voided or deleted by someone in Xero.
pub const INVOICE_VOIDED_IN_XERO: &str = "invoice_voided_in_xero";
/// Xero's invoice total no longer equals the order's grand total (lines edited in Xero).
pub const INVOICE_TOTAL_DIFFERS: &str = "invoice_total_differs";
/// tally applied the order's payment, but Xero no longer shows it (deleted in Xero).
pub const PAYMENT_MISSING_IN_XERO: &str = "payment_missing_in_xero";
/// The order was cancelled in Magento after tally posted its invoice, which Xero still has
/// as owed. Raised by ingest when it reads the cancellation; closed by the reconciler once
/// the invoice is voided (or deleted) in Xero.
pub const ORDER_CANCELLED_IN_MAGENTO: &str = "order_cancelled_in_magento";

/// Every kind the reconciler raises and closes: a discrepancy of another kind is never
/// closed by a reconciliation pass.
pub const RECONCILED: [&str; 4] = [
    INVOICE_VOIDED_IN_XERO,
    INVOICE_TOTAL_DIFFERS,
    PAYMENT_MISSING_IN_XERO,
    ORDER_CANCELLED_IN_MAGENTO,
];

/// The discrepancy key of `kind` for `order` (`voided:order:000000123`). Voided keeps the
/// prefix the webhook path has always written, so both paths raise the same discrepancy.
pub fn key(kind: &str, order: &str) -> String {
    let prefix = match kind {
        INVOICE_VOIDED_IN_XERO => "voided",
        INVOICE_TOTAL_DIFFERS => "total",
        PAYMENT_MISSING_IN_XERO => "payment-missing",
        ORDER_CANCELLED_IN_MAGENTO => "cancelled",
        other => other,
    };
    format!("{prefix}:{order}")
}

/// What a kind means and what to do about it, in a finance team's words: the headings of
/// `tally report`'s Markdown and HTML.
pub fn explain(kind: &str) -> (&'static str, &'static str) {
    match kind {
        INVOICE_VOIDED_IN_XERO => (
            "Invoice voided in Xero",
            "Someone voided or deleted in Xero an invoice tally posted, and Magento still has the order. Cancel the order in Magento, or re-create the invoice in Xero.",
        ),
        INVOICE_TOTAL_DIFFERS => (
            "Invoice total differs",
            "Someone changed an invoice in Xero, and its total no longer equals the order's grand total. Restore it from the console (f) while nothing is paid on it, correct it in Xero, or acknowledge the difference.",
        ),
        PAYMENT_MISSING_IN_XERO => (
            "Payment missing in Xero",
            "tally applied the order's payment, and Xero no longer shows it (removed in Xero). Apply it again from the console (f), or acknowledge it.",
        ),
        ORDER_CANCELLED_IN_MAGENTO => (
            "Order cancelled in Magento",
            "The shop cancelled an order after tally invoiced it, and Xero still has the invoice as owed. Void it from the console (f), or in Xero.",
        ),
        _ => (
            "Other",
            "Raised by an earlier release; compare both systems.",
        ),
    }
}
