/// The pods that differ between two lists of a cluster's pods: those removed
/// or changed in their old versions, those added or changed in their new ones.
///
/// A state patched from another (``ClusterManifestLoader`` replacing the pods
/// of a few files) keeps the other pods as the same values in the same order,
/// so one walk over both lists, comparing references, finds the few that
/// differ; only those are compared by name and content.
struct PodChanges {
    var removed: [ClusterPod] = []
    var added: [ClusterPod] = []
    /// `namespace/name` of every pod that differs.
    var keys = Set<String>()

    /// Nil when more than `limit` pods differ.
    init?(from old: [ClusterPod], to new: [ClusterPod], limit: Int) {
        var gone: [ClusterPod] = []
        var i = 0, j = 0
        while i < old.count, j < new.count {
            if old[i].isCopy(of: new[j]) {
                i += 1
                j += 1
            } else {
                // Removed, changed or moved: which, the comparison by name below tells.
                gone.append(old[i])
                i += 1
            }
        }
        gone += old[i...]
        let came = new[j...]
        // Pods moved rather than changed (a full reload orders them by file) come back as equal by name.
        var cameByKey: [String: ClusterPod] = [:]
        for pod in came { cameByKey[pod.key] = pod }
        var goneByKey: [String: ClusterPod] = [:]
        for pod in gone { goneByKey[pod.key] = pod }
        for (key, pod) in cameByKey where goneByKey[key].map({ !$0.sameSpec(as: pod) }) ?? true {
            added.append(pod)
            keys.insert(key)
        }
        for (key, pod) in goneByKey where cameByKey[key].map({ !$0.sameSpec(as: pod) }) ?? true {
            removed.append(pod)
            keys.insert(key)
        }
        if keys.count > limit { return nil }
    }
}
