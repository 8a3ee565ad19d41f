"""Serves SavedModels the way TF Serving does, with none of the packages below, for
tests/test_export.py: TF1's session loader with the `serve` tag, feeding and fetching only
the tensor names of the SignatureDefs. REQUESTS is a pickled list of (export dir,
signature name, {input name: array}); RESULTS gets a pickled dict of the answers (each a
dict of arrays, or the message of an InvalidArgumentError) and the blocked packages that
were imported anyway.

    python tests/scripts/tf_serving_session.py REQUESTS RESULTS
"""
import pickle
import sys

BLOCKED = ("videoflow_tf", "tensorflow_probability", "tf_keras")


class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} may not be imported by the model server")


sys.meta_path.insert(0, Blocked())
import tensorflow as tf  # noqa: E402  (only once the block is in place)

with open(sys.argv[1], "rb") as file:
    requests = pickle.load(file)
sessions, results = {}, []
for export_dir, signature_name, inputs in requests:
    if export_dir not in sessions:
        session = tf.compat.v1.Session(graph=tf.Graph())
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], export_dir)
        sessions[export_dir] = session, meta_graph.signature_def
    session, signatures = sessions[export_dir]
    signature = signatures[signature_name]
    feeds = {signature.inputs[name].name: value for name, value in inputs.items()}
    fetches = {name: info.name for name, info in signature.outputs.items()}
    try:
        results.append(session.run(fetches, feeds))
    except tf.errors.InvalidArgumentError as error:
        results.append(error.message)
imported = sorted(name for name in sys.modules if name.split(".")[0] in BLOCKED)
with open(sys.argv[2], "wb") as file:
    pickle.dump({"results": results, "imported": imported}, file)
