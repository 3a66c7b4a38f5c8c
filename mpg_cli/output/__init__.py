"""Pictures: SVG charts (``svg``), the HTML report (``report_html``) and terminal bars (``bars``)."""
