"""The kiosk touchscreen app (Beranda, Tanya, Lapor, Cek Laporan, Darurat) and its report outbox."""
