"""crm2-deals: clients, pipelines, deals, insurance policies and activities."""
