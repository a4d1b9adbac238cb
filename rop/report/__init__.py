"""Report assembly: periods, the filter, the viewer's scope, the report and its exports."""
