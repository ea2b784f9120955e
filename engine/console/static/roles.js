/**
 * What each role may do, as engine/console/roles.py decides it: the pages use it only to leave out
 * links and buttons a role cannot use; the API enforces it.
 */

const PERMISSIONS = {
  stats: ['admin', 'integrator', 'auditor', 'viewer'],
  messages: ['admin', 'integrator', 'auditor'],
  reprocess: ['admin', 'integrator'],
  audit: ['admin', 'auditor'],
  patients: ['admin', 'integrator', 'auditor'],
  steward: ['admin', 'integrator'],
};

/** Whether `role` has `permission` (stats, messages, reprocess, audit, patients, steward). */
export function may(role, permission) {
  return Boolean(role) && (PERMISSIONS[permission] || []).includes(role);
}
