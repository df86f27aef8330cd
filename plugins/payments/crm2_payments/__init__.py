"""crm2 payments: premium schedules, allocations, refunds, commissions and reconciliation."""
