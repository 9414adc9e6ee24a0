"""What people wrote, kept only as long as needed: retention, unsend, disclosure and deletion."""
